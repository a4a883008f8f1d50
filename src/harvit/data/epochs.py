"""Per-epoch mean and standard deviation of the accelerometer, in one pass over a recording.

Epochs are fixed stretches of wall-clock time aligned to the clock (a 10 s epoch starts at :00, :10, ...; a
day's epochs start at midnight), the statistics those of calibration (van Hees et al. 2014) and non-wear
detection (:mod:`harvit.data.nonwear`) read. Only epochs holding samples are listed. Where the clock steps back
by more than one epoch (a change from summer time), the repeated wall-clock times are new epochs, listed after
the earlier ones, so ``time_ns`` then goes back once; a step back within an epoch (clock jitter) stays in the
epoch reached.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from harvit.data.streams import G, RecordingStream
from harvit.utils.errors import HarvitError

log = logging.getLogger(__name__)


@dataclass
class EpochStats:
    """Accelerometer statistics per epoch.

    Attributes:
        time_ns: int64 [E] epoch start (local wall-clock time, ns since 1970-01-01).
        mean: float64 [E, 3] mean acceleration per axis in g.
        sd: float64 [E, 3] sample standard deviation per axis in g (NaN for an epoch of one sample).
        n: int64 [E] samples in the epoch.
        epoch_s: the epoch length in seconds.
    """

    time_ns: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    n: np.ndarray
    epoch_s: float = 10.0

    def __len__(self) -> int:
        return len(self.time_ns)


class _Accumulator:
    """Sums, sums of squares and counts per epoch, run by run (memory grows with the epochs, not the samples)."""

    def __init__(self, epoch_ns: int) -> None:
        self.epoch_ns = epoch_ns
        self.shift: np.ndarray | None = None  # the first sample: sums are of (x - shift), for precision
        self.bins: list[np.ndarray] = []
        self.sums: list[np.ndarray] = []
        self.squares: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self.last_t: int | None = None
        self.last_bin: int | None = None

    def add(self, t: np.ndarray, xyz: np.ndarray) -> None:
        if self.shift is None:
            self.shift = xyz[0].astype(np.float64)
        back = np.flatnonzero(np.diff(t) < -self.epoch_ns) + 1
        starts = np.concatenate([[0], back]).astype(np.int64)
        stops = np.concatenate([back, [len(t)]]).astype(np.int64)
        for a, b in zip(starts, stops, strict=True):
            self._segment(t[a:b], xyz[a:b], continues=a == 0)  # after a step back: a new run

    def _segment(self, t: np.ndarray, xyz: np.ndarray, continues: bool) -> None:
        bins = t // self.epoch_ns
        joined = continues and self.last_t is not None and t[0] - self.last_t >= -self.epoch_ns
        if joined:
            bins = np.maximum(bins, self.last_bin)
        bins = np.maximum.accumulate(bins)
        change = np.flatnonzero(np.diff(bins)) + 1
        starts = np.concatenate([[0], change])
        x = xyz.astype(np.float64) - self.shift
        sums = np.add.reduceat(x, starts, axis=0)
        squares = np.add.reduceat(x * x, starts, axis=0)
        counts = np.diff(np.concatenate([starts, [len(bins)]]))
        run_bins = bins[starts]
        if joined and self.bins and run_bins[0] == self.last_bin:
            self.sums[-1][-1] += sums[0]
            self.squares[-1][-1] += squares[0]
            self.counts[-1][-1] += counts[0]
            run_bins, sums, squares, counts = run_bins[1:], sums[1:], squares[1:], counts[1:]
        if len(run_bins):
            self.bins.append(run_bins)
            self.sums.append(sums)
            self.squares.append(squares)
            self.counts.append(counts)
        self.last_t = int(t[-1])
        self.last_bin = int(bins[-1])

    def stats(self, epoch_s: float) -> EpochStats:
        if not self.bins:
            raise HarvitError("the recording holds no samples; expected at least one epoch")
        bins = np.concatenate(self.bins)
        sums = np.concatenate(self.sums)
        squares = np.concatenate(self.squares)
        n = np.concatenate(self.counts).astype(np.int64)
        mean = sums / n[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            var = np.maximum(squares - sums * mean, 0.0) / (n[:, None] - 1)
        sd = np.where(n[:, None] > 1, np.sqrt(var), np.nan)
        return EpochStats(bins * self.epoch_ns, mean + self.shift, sd, n, float(epoch_s))


def epoch_stats(stream: RecordingStream, epoch_s: float = 10.0) -> EpochStats:
    """Mean and SD of the accelerometer per epoch of ``epoch_s`` seconds, in one pass over ``stream``.

    Acceleration in m/s^2 is converted to g; an ``unknown`` unit is taken as g. Samples with a NaN on any
    accelerometer axis are left out.

    Args:
        stream: the recording (its accelerometer triple: :meth:`RecordingStream.acc_index`).
        epoch_s: epoch length in seconds (> 0); epochs align to the clock (see the module docstring).

    Returns:
        :class:`EpochStats` of every epoch that holds a sample, in recording order.
    """
    epoch_ns = int(round(epoch_s * 1e9))
    if epoch_ns <= 0:
        raise HarvitError(f"epoch {epoch_s} s: expected a length in seconds > 0")
    triple = list(stream.acc_index())
    scale = 1.0 / G if stream.acc_unit == "m/s2" else 1.0
    if stream.acc_unit not in ("g", "m/s2"):
        log.warning("%s: acceleration unit %s (its magnitude is neither about 1 g nor about 9.8 m/s^2); taken as g "
                    "for the epoch statistics", stream.source, stream.acc_unit)
    acc = _Accumulator(epoch_ns)
    for chunk in stream:
        xyz = chunk.values[:, triple].astype(np.float64) * scale
        keep = np.isfinite(xyz).all(axis=1)
        if not keep.all():
            xyz, t = xyz[keep], chunk.time_ns[keep]
        else:
            t = chunk.time_ns
        if len(t):
            acc.add(np.asarray(t, dtype=np.int64), xyz)
    return acc.stats(epoch_s)
