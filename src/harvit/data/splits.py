"""Splits that hold out whole subjects; a stratified split of windows only for data without subjects."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from harvit.data.holdout import choose_holdout
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
                    val_subjects: Sequence[int | str] | None = None) -> tuple[Windows, Windows]:
    """Split training windows into (train, val) by subject.

    Whole subjects go to validation, chosen (seeded) so that their windows come as close as possible
    to ``val_fraction`` of the training windows, every class keeping training windows and, where the
    data allow, appearing in validation too (:func:`harvit.data.holdout.choose_holdout`). The same
    windows, seed and fraction always give the same split. Explicit ``val_subjects`` (the data's
    subject names, or ids; e.g. one cross-validation fold) override the fraction and the seed.

    What was chosen (subject names, windows, share) is logged and kept in both parts'
    ``meta["val_choice"]``; ``meta["val_subjects"]`` holds the sorted ids.

    Windows without subjects (:attr:`Windows.has_subjects` False) are split by
    :func:`stratified_split` instead, with a warning (one person's windows can sit on both sides).

    Raises:
        HarvitError: naming ``--val-fraction`` when the fraction is outside (0, 1), the training windows
            hold one subject, or every choice leaves a class without training windows; naming
            ``--val-subjects`` when a given subject is not a training subject or none would be left.
    """
    if val_subjects:
        return _explicit_split(w, val_subjects, val_fraction, seed)
    if not 0.0 < val_fraction < 1.0:
        raise HarvitError(f"--val-fraction is {val_fraction}; expected a fraction of the training windows in (0, 1)")
    if len(w) and not w.has_subjects:
        log.warning("validation: %s", NO_SUBJECT_NOTE)
        is_val = stratified_split(w.y, val_fraction, seed)
        if is_val.all() or not is_val.any():
            raise HarvitError(f"--val-fraction {val_fraction}: the split would leave an empty train or validation set")
        train, val = w.subset(~is_val), w.subset(is_val)
        choice = {"how": "stratified windows", "subjects": [], "windows": len(val),
                  "share": round(len(val) / len(w), 4), "fraction": val_fraction}
        for part, name in ((train, "train"), (val, "val")):
            part.meta.update(split=name, val_subjects=[], val_fraction=val_fraction, val_seed=seed,
                             val_stratified_windows=True, val_choice=choice)
        return train, val
    subjects = w.subjects()
    if len(subjects) < 2:
        raise HarvitError(
            f"--val-fraction {val_fraction}: the training windows hold {len(subjects)} subject(s) "
            f"({', '.join(_names(w, subjects)) or 'none'}); validation holds out whole subjects, which needs at "
            "least 2 (for a table, --subject-from none splits windows stratified by class instead, with "
            "optimistic scores)"
        )
    held = choose_holdout(w.subject, w.y, len(w.classes), val_fraction, seed)
    if held.untrained:
        lost = ", ".join(w.classes[k] for k in held.untrained)
        raise HarvitError(
            f"--val-fraction {val_fraction}: every choice of validation subjects leaves class(es) {lost} with no "
            "training window (each subject alone holds a class); name them with --val-subjects, or pass "
            "--subject-from none to split windows instead"
        )
    return _held_out(w, held.subjects, val_fraction, seed, "window share")


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


def resolve_subjects(w: Windows, tokens: Sequence[int | str], flag: str) -> list[int]:
    """Subject ids of ``tokens``: the data's subject names (``meta["subject_names"]``), or ids.

    Raises:
        HarvitError: naming ``flag`` and the subjects present when a token matches none.
    """
    present = w.subjects()
    names = _names(w, present)
    by_name = dict(zip(names, present, strict=True))
    by_id = {str(s): s for s in present}
    chosen, unknown = set(), []
    for token in tokens:
        text = str(token).strip()
        if text in by_name:
            chosen.add(by_name[text])
        elif text in by_id:
            chosen.add(by_id[text])
        else:
            unknown.append(text)
    if unknown:
        raise HarvitError(f"{flag}: no training subject {', '.join(unknown)} in the data; training subjects: "
                          f"{', '.join(names)}")
    return sorted(chosen)


def _names(w: Windows, ids: Sequence[int]) -> list[str]:
    """The data's names of subject ids (the id itself where the data name none)."""
    names = w.meta.get("subject_names") or {}
    return [str(names.get(str(s), s)) for s in ids]


def _explicit_split(w: Windows, val_subjects: Sequence[int | str], val_fraction: float, seed: int
                    ) -> tuple[Windows, Windows]:
    """(train, val) with the given subjects (names or ids) held out for validation."""
    chosen = resolve_subjects(w, val_subjects, "--val-subjects")
    if len(chosen) >= len(w.subjects()):
        raise HarvitError("--val-subjects: every training subject is held out; leave at least one for training")
    return _held_out(w, chosen, val_fraction, seed, "--val-subjects")


def _held_out(w: Windows, chosen: list[int], val_fraction: float, seed: int, how: str) -> tuple[Windows, Windows]:
    """(train, val) with subjects ``chosen`` held out; the choice logged and kept in both parts' meta."""
    is_val = np.isin(w.subject, np.array(chosen, dtype=np.int64))
    train, val = w.subset(~is_val), w.subset(is_val)
    share = len(val) / max(len(w), 1)
    names = _names(w, chosen)
    choice = {"how": how, "subjects": names, "ids": list(chosen), "windows": len(val), "share": round(share, 4),
              "fraction": val_fraction, "seed": seed}
    log.info("validation: subjects %s (%d windows, %.1f%% of the training windows; %s, --val-fraction %g, seed %d)",
             ", ".join(names), len(val), 100 * share, how, val_fraction, seed)
    untrained = sorted(set(np.unique(val.y).tolist()) - set(np.unique(train.y).tolist()))
    if untrained:
        log.warning("validation: class(es) %s have no training window (only validation subjects %s hold them)",
                    ", ".join(w.classes[k] for k in untrained), ", ".join(names))
    unseen = sorted(set(np.unique(train.y).tolist()) - set(np.unique(val.y).tolist()))
    if unseen:
        log.info("validation: no window of class(es) %s (their subjects are all in training)",
                 ", ".join(w.classes[k] for k in unseen))
    for part, name in ((train, "train"), (val, "val")):
        part.meta.update(split=name, val_subjects=list(chosen), val_fraction=val_fraction, val_seed=seed,
                         val_choice=choice)
    return train, val
