"""Windows that lie wholly inside one labelled segment of one recording (the HAPT rule).

A *segment* is a stretch of samples ``[start, end)`` with one label. Windows of ``length`` samples
start at a segment's first sample and every ``stride`` samples after it, as long as they end inside
the segment; so a window never mixes two activities and never touches unlabelled samples. HAPT's
labelled segments and the stretches of one label in a table's label column both go through here.
"""

from __future__ import annotations

import numpy as np

from harvit.data.signals import window_starts

UNLABELLED = -1
"""Label code of a sample outside every labelled segment."""


def label_segments(labels: np.ndarray) -> np.ndarray:
    """Maximal segments of one label in a per-sample label sequence.

    Args:
        labels: int [T] class index per sample, :data:`UNLABELLED` (-1) where there is none.

    Returns:
        int64 [S, 3] rows ``start, end (exclusive), label`` of the labelled segments, in time order.
    """
    labels = np.asarray(labels)
    if labels.size == 0:
        return np.zeros((0, 3), dtype=np.int64)
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [labels.size]])
    segments = np.column_stack([starts, ends, labels[starts]]).astype(np.int64)
    return segments[segments[:, 2] != UNLABELLED]


def segment_window_starts(segments: np.ndarray, length: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Window starts inside segments.

    Args:
        segments: int [S, 3] rows ``start, end (exclusive), label``.
        length: window length in samples.
        stride: step between window starts in samples.

    Returns:
        (int64 [N] first sample of each window, int64 [N] its segment's label).
    """
    starts, labels = [], []
    for start, end, label in np.asarray(segments, dtype=np.int64).reshape(-1, 3):
        s = start + window_starts(int(end - start), length, stride)
        starts.append(s)
        labels.append(np.full(len(s), label, dtype=np.int64))
    if not starts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(starts), np.concatenate(labels)


def clear_of(starts: np.ndarray, bad: np.ndarray, length: int) -> np.ndarray:
    """bool [N]: True where window ``[start, start + length)`` holds no sample flagged in ``bad`` (bool [T])."""
    if not bad.any():
        return np.ones(len(starts), dtype=bool)
    cum = np.concatenate([[0], np.cumsum(bad)])
    return (cum[starts + length] - cum[starts]) == 0


def gather_windows(sig: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Copy windows out of a recording.

    Args:
        sig: [C, T] signal.
        starts: int [N] first sample of each window (``start + length <= T``).
        length: window length in samples.

    Returns:
        [N, C, length] contiguous copy, same dtype as ``sig``.
    """
    index = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(length)[None, :]  # [N, length]
    return np.ascontiguousarray(sig[:, index].transpose(1, 0, 2))
