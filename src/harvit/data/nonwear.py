"""Non-wear time: long periods in which the device does not move.

The stationary-period rule of the UK Biobank accelerometer analysis and actipy (Doherty A, Jackson D,
Hammerla N, et al. *Large scale population assessment of physical activity using wrist worn accelerometers: the
UK Biobank study.* PLoS ONE 12:e0169649, 2017; actipy's ``find_nonwear_segments``), after GGIR's use of the
signal's standard deviation (van Hees VT et al., PLoS ONE 6:e22922, 2011): an epoch is still when every axis'
standard deviation is below ``sd_threshold_g`` (13 mg), and a run of consecutive still epochs lasting at least
``min_minutes`` is non-wear. Shorter still runs (sitting, sleep) stay wear time.
Epochs are consecutive when they follow each other without a gap in time; an epoch without samples (a gap in
the recording) ends a run.
"""

from __future__ import annotations

import numpy as np

from harvit.data.epochs import EpochStats
from harvit.utils.errors import HarvitError

SD_THRESHOLD_G = 0.013
MIN_MINUTES = 60.0


def still_epochs(stats: EpochStats, sd_threshold_g: float = SD_THRESHOLD_G) -> np.ndarray:
    """bool [E]: every axis' SD below ``sd_threshold_g`` (an epoch of one sample, SD NaN, is not still)."""
    return np.all(stats.sd < sd_threshold_g, axis=1)


def _runs(mask: np.ndarray, time_ns: np.ndarray, epoch_ns: int) -> list[tuple[int, int]]:
    """``[start, stop)`` index ranges of the runs of True in ``mask`` whose epochs follow one another in time."""
    mask = np.asarray(mask, dtype=bool)
    if len(mask) != len(time_ns):
        raise HarvitError(f"non-wear: mask of {len(mask)} epochs for {len(time_ns)} epoch times; expected equal")
    adjacent = np.diff(time_ns) == epoch_ns
    breaks = ~mask[1:] | ~mask[:-1] | ~adjacent
    edges = np.flatnonzero(breaks) + 1
    starts = np.concatenate([[0], edges])
    stops = np.concatenate([edges, [len(mask)]])
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True) if b > a and mask[a]]


def nonwear_mask(stats: EpochStats, sd_threshold_g: float = SD_THRESHOLD_G,
                 min_minutes: float = MIN_MINUTES) -> np.ndarray:
    """bool [E]: the epochs of ``stats`` inside a still run of at least ``min_minutes`` (module docstring).

    Args:
        stats: per-epoch statistics (:func:`harvit.data.epochs.epoch_stats`; 10 s epochs as actipy, 60 s as the
            minutes of a daily table).
        sd_threshold_g: SD in g below which, on every axis, an epoch is still.
        min_minutes: shortest still run that is non-wear.
    """
    if sd_threshold_g <= 0 or min_minutes <= 0:
        raise HarvitError(f"non-wear: threshold {sd_threshold_g} g and {min_minutes} min; expected both > 0")
    epoch_ns = int(round(stats.epoch_s * 1e9))
    need = int(np.ceil(min_minutes * 60 / stats.epoch_s - 1e-9))
    out = np.zeros(len(stats), dtype=bool)
    for a, b in _runs(still_epochs(stats, sd_threshold_g), stats.time_ns, epoch_ns):
        if b - a >= need:
            out[a:b] = True
    return out


def intervals(mask: np.ndarray, time_ns: np.ndarray, epoch_s: float) -> list[tuple[int, int]]:
    """``(start_ns, end_ns)`` of each run of consecutive flagged epochs; ``end_ns`` is the last epoch's end.

    Args:
        mask: bool [E], e.g. :func:`nonwear_mask`.
        time_ns: int64 [E] epoch starts.
        epoch_s: epoch length in seconds.
    """
    epoch_ns = int(round(epoch_s * 1e9))
    time_ns = np.asarray(time_ns, dtype=np.int64)
    return [(int(time_ns[a]), int(time_ns[b - 1]) + epoch_ns) for a, b in _runs(mask, time_ns, epoch_ns)]
