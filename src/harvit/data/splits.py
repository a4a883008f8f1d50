"""Validation splits that hold out whole subjects (never a random subset of windows)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from harvit.data.windows import Windows
from harvit.utils.errors import HarvitError


def n_val_subjects(n_subjects: int, val_fraction: float) -> int:
    """Subjects to hold out: ``round(val_fraction * n_subjects)`` (half up), at least 1,
    leaving at least 1."""
    n = math.floor(val_fraction * n_subjects + 0.5)
    return min(max(n, 1), n_subjects - 1)


def train_val_split(w: Windows, val_fraction: float, seed: int,
                    val_subjects: Sequence[int] | None = None) -> tuple[Windows, Windows]:
    """Split training windows into (train, val) by subject.

    A seeded random choice of ``round(val_fraction * S)`` of the S training subjects (at least 1,
    and at least 1 left for training) goes to validation with all their windows. The same
    windows, seed and fraction always give the same split. Explicit ``val_subjects`` (ids of
    training subjects, e.g. one cross-validation fold) override the fraction and the seed.

    Raises:
        HarvitError: naming ``--val-fraction`` when the fraction is outside (0, 1) or a split would be
            empty; naming ``--val-subjects`` when a given subject is not a training subject or no
            training subject would be left.
    """
    if val_subjects:
        return _explicit_split(w, val_subjects, val_fraction, seed)
    if not 0.0 < val_fraction < 1.0:
        raise HarvitError(f"--val-fraction is {val_fraction}; expected a fraction of subjects in (0, 1)")
    subjects = w.subjects()
    if len(subjects) < 2:
        raise HarvitError(
            f"--val-fraction {val_fraction}: the training windows hold {len(subjects)} subject(s); "
            "holding out whole subjects needs at least 2"
        )
    rng = np.random.default_rng(seed)
    n_val = n_val_subjects(len(subjects), val_fraction)
    chosen = rng.permutation(np.array(subjects, dtype=np.int64))[:n_val]
    is_val = np.isin(w.subject, chosen)
    if is_val.all() or not is_val.any():
        raise HarvitError(
            f"--val-fraction {val_fraction}: the split would leave an empty train or validation set"
        )
    val_subjects = sorted(int(s) for s in chosen)
    train, val = w.subset(~is_val), w.subset(is_val)
    train.meta.update(split="train", val_subjects=val_subjects, val_fraction=val_fraction, val_seed=seed)
    val.meta.update(split="val", val_subjects=val_subjects, val_fraction=val_fraction, val_seed=seed)
    return train, val


def _explicit_split(w: Windows, val_subjects: Sequence[int], val_fraction: float, seed: int
                    ) -> tuple[Windows, Windows]:
    """(train, val) with the given subjects held out for validation."""
    subjects = w.subjects()
    chosen = sorted({int(s) for s in val_subjects})
    unknown = [s for s in chosen if s not in subjects]
    if unknown:
        raise HarvitError(f"--val-subjects: subject(s) {', '.join(map(str, unknown))} are not training subjects "
                          f"(those are {', '.join(map(str, subjects))})")
    if len(chosen) >= len(subjects):
        raise HarvitError("--val-subjects: every training subject is held out; leave at least one for training")
    is_val = np.isin(w.subject, np.array(chosen, dtype=np.int64))
    train, val = w.subset(~is_val), w.subset(is_val)
    for part, name in ((train, "train"), (val, "val")):
        part.meta.update(split=name, val_subjects=chosen, val_fraction=val_fraction, val_seed=seed)
    return train, val
