"""Which whole subjects to hold out so that their windows come closest to a share of the windows.

Counting subjects fails on real data: where one person holds 64% of the windows, drawing 20% of the
subjects can take 68% of the windows. :func:`choose_holdout` instead searches (seeded) for a set of
subjects whose windows come as close as possible to ``fraction`` of all windows, under these rules,
in order of priority:

1. every class keeps at least one window on the kept side (a class with windows from one subject
   only therefore keeps that subject);
2. the held-out share lies within [fraction / 2, 3 * fraction / 2] where any choice allows it;
3. as many classes as possible appear on the held-out side too (every class held by 2+ subjects);
4. the share is as close to ``fraction`` as possible.

Candidate sets come from random subject orders (a greedy fill towards the target) and from
class-first fills (one subject per class not yet covered, then the fill), each pruned by dropping
subjects while that improves the score. The same counts, fraction and seed always give the same set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRIES = 64
"""Random orders tried per kind of fill."""


@dataclass(frozen=True)
class Holdout:
    """A chosen set of held-out subjects.

    Attributes:
        subjects: sorted ids of the held-out subjects.
        windows: their windows.
        share: ``windows`` / all windows.
        untrained: indices of classes left with no kept window (empty unless unavoidable).
        unseen: indices of classes held by 2+ subjects but absent from the held-out side.
    """

    subjects: list[int]
    windows: int
    share: float
    untrained: list[int]
    unseen: list[int]


def class_counts(subject: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted subject ids int64 [S], windows per subject and class int64 [S, K])."""
    ids, index = np.unique(subject, return_inverse=True)
    counts = np.zeros((len(ids), n_classes), dtype=np.int64)
    np.add.at(counts, (index, y), 1)
    return ids.astype(np.int64), counts


def choose_holdout(subject: np.ndarray, y: np.ndarray, n_classes: int, fraction: float, seed: int) -> Holdout:
    """Whole subjects whose windows come closest to ``fraction`` of the windows (see the module docstring).

    Args:
        subject: int64 [N] subject id per window (at least 2 distinct).
        y: int64 [N] class per window in ``0..n_classes-1``.
        n_classes: K.
        fraction: target share of the windows in (0, 1).
        seed: seed of the search.

    Returns:
        The best :class:`Holdout` found: at least one subject held out and at least one kept.
    """
    ids, counts = class_counts(subject, y, n_classes)
    search = _Search(counts, fraction)
    rng = np.random.default_rng(seed)
    best: tuple | None = None
    best_mask = np.zeros(len(ids), dtype=bool)
    for mask in search.candidates(rng):
        score = search.score(mask)
        if best is None or score < best:
            best, best_mask = score, mask
    held = counts[best_mask].sum(axis=0)
    kept = counts[~best_mask].sum(axis=0)
    present = counts.sum(axis=0) > 0
    shared = (counts > 0).sum(axis=0) >= 2
    total = int(counts.sum())
    return Holdout(
        subjects=sorted(int(s) for s in ids[best_mask]),
        windows=int(held.sum()),
        share=float(held.sum()) / max(total, 1),
        untrained=[int(k) for k in np.flatnonzero(present & (kept == 0))],
        unseen=[int(k) for k in np.flatnonzero(shared & (held == 0))],
    )


class _Search:
    """Scores and candidate sets of one search (counts int64 [S, K])."""

    def __init__(self, counts: np.ndarray, fraction: float) -> None:
        self.counts = counts
        self.sizes = counts.sum(axis=1)
        self.total = max(int(self.sizes.sum()), 1)
        self.fraction = fraction
        self.present = counts.sum(axis=0) > 0
        self.shared = (counts > 0).sum(axis=0) >= 2
        # a subject that alone holds some class never leaves training
        sole = (counts > 0) & ((counts > 0).sum(axis=0) == 1)[None, :]
        self.free = np.flatnonzero(~sole.any(axis=1))
        if len(self.free) == 0:  # nothing can go without losing a class: the score says so
            self.free = np.arange(len(counts))

    def score(self, mask: np.ndarray) -> tuple:
        """Lower is better: (classes left untrained, outside the band, classes unseen, distance, subjects)."""
        if not mask.any() or mask.all():
            return (np.inf,)
        held = self.counts[mask].sum(axis=0)
        kept = self.counts[~mask].sum(axis=0)
        share = float(held.sum()) / self.total
        distance = abs(share - self.fraction)
        return (int((self.present & (kept == 0)).sum()), int(distance > self.fraction / 2),
                int((self.shared & (held == 0)).sum()), round(distance, 12), int(mask.sum()))

    def candidates(self, rng: np.random.Generator):
        """Yield bool [S] masks of held-out subjects."""
        target = self.fraction * self.total
        for _ in range(TRIES):
            yield self._prune(self._fill(np.zeros(len(self.counts), dtype=bool), rng.permutation(self.free), target))
            yield self._prune(self._fill(self._cover(rng), rng.permutation(self.free), target))

    def _fill(self, mask: np.ndarray, order: np.ndarray, target: float) -> np.ndarray:
        """Add subjects in ``order`` while each brings the held-out windows closer to ``target``; at least one."""
        mask = mask.copy()
        held = float(self.sizes[mask].sum())
        for s in order:
            if not mask[s] and abs(held + self.sizes[s] - target) < abs(held - target):
                mask[s] = True
                held += float(self.sizes[s])
        if not mask.any():
            mask[order[np.argmin(np.abs(self.sizes[order] - target))]] = True
        return mask

    def _cover(self, rng: np.random.Generator) -> np.ndarray:
        """One free subject for each shared class not yet held out (classes in random order; among its holders,
        the one with the fewest windows, ties at random)."""
        mask = np.zeros(len(self.counts), dtype=bool)
        for k in rng.permutation(np.flatnonzero(self.shared)):
            if self.counts[mask, k].sum() > 0:
                continue
            holders = self.free[self.counts[self.free, k] > 0]
            if len(holders):
                holders = rng.permutation(holders)
                mask[holders[np.argmin(self.sizes[holders])]] = True
        return mask

    def _prune(self, mask: np.ndarray) -> np.ndarray:
        """Drop (and then add) single subjects while that lowers the score."""
        score = self.score(mask)
        improved = True
        while improved:
            improved = False
            for s in self.free:
                trial = mask.copy()
                trial[s] = not trial[s]
                trial_score = self.score(trial)
                if trial_score < score:
                    mask, score, improved = trial, trial_score, True
        return mask
