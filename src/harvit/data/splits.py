"""Splits that hold out whole subjects; a stratified split of windows only for data without subjects."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from harvit.data.windows import Windows
from harvit.utils.errors import HarvitError

log = logging.getLogger(__name__)

NO_SUBJECT_NOTE = (
    "the data name no subjects, so windows were split at random (stratified by class): one person's windows, "
    "and overlapping neighbours of a window, can sit on both sides, so scores are optimistic"
)


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

    Windows without subjects (:attr:`Windows.has_subjects` False) are split by
    :func:`stratified_split` instead, with a warning (one person's windows can sit on both sides).

    Raises:
        HarvitError: naming ``--val-fraction`` when the fraction is outside (0, 1) or a split would be
            empty; naming ``--val-subjects`` when a given subject is not a training subject or no
            training subject would be left.
    """
    if val_subjects:
        return _explicit_split(w, val_subjects, val_fraction, seed)
    if not 0.0 < val_fraction < 1.0:
        raise HarvitError(f"--val-fraction is {val_fraction}; expected a fraction of subjects in (0, 1)")
    if len(w) and not w.has_subjects:
        log.warning("validation: %s", NO_SUBJECT_NOTE)
        is_val = stratified_split(w.y, val_fraction, seed)
        if is_val.all() or not is_val.any():
            raise HarvitError(f"--val-fraction {val_fraction}: the split would leave an empty train or validation set")
        train, val = w.subset(~is_val), w.subset(is_val)
        for part, name in ((train, "train"), (val, "val")):
            part.meta.update(split=name, val_subjects=[], val_fraction=val_fraction, val_seed=seed,
                             val_stratified_windows=True)
        return train, val
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


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded split of windows stratified by class (for data without subjects).

    Each class with n windows sends ``round(fraction * n)`` of them (at least 1 and at most n - 1 when
    n >= 2; none when n == 1) to the held-out side.

    Returns:
        bool [N], True for held-out windows.
    """
    rng = np.random.default_rng(seed)
    held = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        index = np.flatnonzero(y == label)
        if len(index) < 2:
            continue
        k = min(max(math.floor(fraction * len(index) + 0.5), 1), len(index) - 1)
        held[rng.permutation(index)[:k]] = True
    return held


def subject_test_split(
    subject: np.ndarray, test_subjects: list[str] | None, fraction: float, seed: int, names: dict[int, str]
) -> tuple[np.ndarray, list[int]]:
    """Choose whole test subjects.

    Args:
        subject: int64 [N] subject id per window.
        test_subjects: ids or names given by ``--test-subjects`` (None: draw ``fraction`` of the subjects).
        fraction: share of subjects drawn for test, ``round(fraction * S)``, at least 1, leaving at least 1.
        seed: seed of the draw.
        names: subject id -> name for data whose subjects are named (empty: the ids are the names).

    Returns:
        (bool [N] True for test windows, sorted test subject ids).
    """
    ids = sorted(int(s) for s in np.unique(subject))
    label = {i: names.get(i, str(i)) for i in ids}
    if test_subjects is not None:
        by_name = {v: k for k, v in label.items()}
        unknown = [s for s in test_subjects if s not in by_name]
        if unknown:
            raise HarvitError(
                f"--test-subjects: no subject {', '.join(unknown)} in the data; subjects: {', '.join(label.values())}"
            )
        chosen = sorted(by_name[s] for s in test_subjects)
        if len(chosen) == len(ids):
            raise HarvitError("--test-subjects: names every subject; expected some left for training")
    else:
        if len(ids) < 2:
            raise HarvitError(f"--test-fraction: the data hold {len(ids)} subject; a subject split needs at least 2")
        n = n_val_subjects(len(ids), fraction)
        chosen = sorted(int(s) for s in np.random.default_rng(seed).permutation(np.array(ids))[:n])
    return np.isin(subject, chosen), chosen


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
