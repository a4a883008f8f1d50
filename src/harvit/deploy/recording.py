"""``harvit predict RUN --recording FILE``: a recording of any length (a device file or a table) -> activities
in calendar time, in bounded memory.

Two passes over the recording's chunks (:func:`harvit.data.streams.open_recording`):

1. epoch statistics (:func:`harvit.data.epochs.epoch_stats`): gravity auto-calibration
   (:func:`harvit.data.calibration.calibrate`, van Hees et al. 2014) and non-wear intervals
   (:func:`harvit.data.nonwear.nonwear_mask`: every axis' SD below a threshold for a long period);
2. each chunk's acceleration converted to g, calibrated, converted to the unit the run was trained on, split
   into segments at gaps longer than one window and at clocks set back, resampled to the model's rate
   (``scipy.signal.resample_poly``), preprocessed as in training and cut into windows (non-overlapping by
   default) by :func:`harvit.deploy.table.chunk_probs` (which keeps a margin of signal on each side of
   the windows so the zero-phase filters see what they see on the whole recording); the windows are
   classified in batches.

Only per-window results are kept (a start time, a segment id and K float32 log-probabilities), plus one
chunk of samples and its margins: peak memory does not grow with the recording's length.

Windows overlapping a non-wear interval are labelled :data:`~harvit.deploy.summary.NONWEAR`; the others take
the model's class, smoothed by the run's hidden Markov model when it has one (:mod:`harvit.deploy.smoothing`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal as sps

from harvit.data.calibration import calibrate
from harvit.data.epochs import epoch_stats
from harvit.data.nonwear import intervals, nonwear_mask
from harvit.data.streams import acc_triple, open_recording
from harvit.data.timebase import rate_ratio
from harvit.deploy.smoothing import smooth_log_probs
from harvit.deploy.summary import NONWEAR, WindowSeries, iso
from harvit.deploy.table import CHUNK_WINDOWS, MARGIN_S, chunk_probs, raw_channel_names, table_options
from harvit.models.loading import TrainedModel
from harvit.utils.errors import HarvitError
from harvit.utils.logging import log, progress_bar

logger = logging.getLogger(__name__)

G = 9.80665
"""Standard gravity, m/s^2 per g."""
EXTRA_MARGIN_S = 2.0
"""Seconds kept beyond :data:`MARGIN_S` on each side, for the resampling filter's own edge."""
CLOCK_BACK_S = 1.0
"""A clock set back by more than this starts a new segment (smaller steps back are timestamp jitter)."""
MIN_RATE_FRACTION = 0.5
"""A recording sampled below this fraction of the model's rate is refused (too little of the band is left)."""


@dataclass(frozen=True)
class RecordingOptions:
    """How a recording is predicted.

    Attributes:
        stride_s: seconds between window starts (None: the window's length, non-overlapping windows).
        chunk_rows: samples read at once (bounds the memory).
        timezone: time zone of a table's epoch times (None: as the reader decides).
        smooth: ``hmm`` (the run's hidden Markov model, when it has one) or ``none``.
        calibrate: gravity auto-calibration before prediction.
        nonwear_sd_g, nonwear_min: the non-wear rule (every axis' SD below ``nonwear_sd_g`` for at least
            ``nonwear_min`` minutes).
        min_wear_h: a day with less wear is flagged ``short_wear``.
        epoch_s: epoch of the calibration and non-wear statistics, seconds.
    """

    stride_s: float | None = None
    chunk_rows: int = 1_000_000
    timezone: str | None = None
    smooth: str = "hmm"
    calibrate: bool = True
    nonwear_sd_g: float = 0.013
    nonwear_min: float = 60.0
    min_wear_h: float = 16.0
    epoch_s: float = 10.0

    def validate(self) -> RecordingOptions:
        """Check the values; raise :class:`HarvitError` naming the first bad flag."""
        if self.stride_s is not None and not (math.isfinite(self.stride_s) and self.stride_s > 0):
            raise HarvitError(f"--stride-s: got {self.stride_s!r}, expected seconds > 0")
        if self.chunk_rows < 1000:
            raise HarvitError(f"--chunk-rows: got {self.chunk_rows}, expected >= 1000")
        if self.smooth not in ("hmm", "none"):
            raise HarvitError(f"--smooth: got {self.smooth!r}, expected hmm or none")
        if not self.nonwear_sd_g > 0:
            raise HarvitError(f"--nonwear-sd-g: got {self.nonwear_sd_g!r}, expected g > 0")
        if not self.nonwear_min > 0:
            raise HarvitError(f"--nonwear-min: got {self.nonwear_min!r}, expected minutes > 0")
        if not 0 <= self.min_wear_h <= 24:
            raise HarvitError(f"--min-wear-h: got {self.min_wear_h!r}, expected hours in [0, 24]")
        return self


# ---- what the run needs and what the recording gives --------------------------------------------------
def training_acc_unit(trained: TrainedModel) -> str | None:
    """The unit (``g`` or ``m/s2``) of the acceleration a run was trained on, or None where it cannot be told.

    The run's ``--acc-unit`` when set; else told from the training data as the run keeps it: the scaler's
    fitted range (0.1 and 99.9 percentiles of every training value) of the total-acceleration channels. Gravity
    alone puts about 1 g on some axis, and a wrist rarely exceeds a few g, so a largest bound within
    [0.6, 4.5] is g, within [6, 45] m/s^2.
    """
    unit = str(getattr(trained.config, "acc_unit", "auto"))
    if unit != "auto":
        return unit
    state = trained.checkpoint.get("model", {})
    lo, hi = state.get("imager.scaler.lo"), state.get("imager.scaler.hi")
    if lo is None or hi is None:
        return None
    channels = list(trained.channels)
    total = [i for i, c in enumerate(channels) if "acc" in c and not c.startswith("body_")]
    if not total:
        return None
    bound = float(max(np.abs(np.asarray(lo))[total].max(), np.abs(np.asarray(hi))[total].max()))
    if 0.6 <= bound <= 4.5:
        return "g"
    if 6.0 <= bound <= 45.0:
        return "m/s2"
    return None


def channel_index(need: list[str], stream: Any) -> list[int]:
    """Columns of the recording ``stream`` that give the model's raw channels ``need``, in order.

    Exact names first; a model trained on one acceleration triple under another name (e.g. ``accel_x..z``)
    reads the recording's accelerometer triple. Raises :class:`HarvitError` naming what is missing.
    """
    have = list(stream.channels)
    if all(c in have for c in need):
        return [have.index(c) for c in need]
    prefixes = {c[:-2] for c in need}
    triple = acc_triple(have)
    if len(need) == 3 and len(prefixes) == 1 and "acc" in next(iter(prefixes)).lower() and triple is not None:
        axes = [c[-1] for c in need]
        if sorted(axes) == ["x", "y", "z"]:
            return [triple["xyz".index(a)] for a in axes]
    missing = [c for c in need if c not in have]
    raise HarvitError(f"{stream.source}: the model needs channels {', '.join(need)}; the recording has "
                      f"{', '.join(have)} (missing: {', '.join(missing)})")


def check_rate(rate_in: float, rate_model: float, source: str) -> tuple[int, int]:
    """(up, down) of the polyphase resampling from the recording's rate to the model's; a rate that is not
    finite, below :data:`MIN_RATE_FRACTION` of the model's, or not near a ratio of small integers is refused."""
    if not (math.isfinite(rate_in) and rate_in > 0):
        raise HarvitError(f"{source}: sample rate {rate_in!r} Hz; expected a positive rate")
    if rate_in < MIN_RATE_FRACTION * rate_model:
        raise HarvitError(f"{source}: sampled at {rate_in:g} Hz; the model reads {rate_model:g} Hz and cannot be "
                          f"resampled from below {MIN_RATE_FRACTION * rate_model:g} Hz")
    up, down = rate_ratio(rate_in, rate_model)
    if up == 0 or abs(up / down - rate_model / rate_in) > 1e-3 * rate_model / rate_in:
        raise HarvitError(f"{source}: {rate_in:g} Hz cannot be resampled to the model's {rate_model:g} Hz by a "
                          "ratio of small integers")
    return up, down


# ---- the second pass: segments, resampling, windows -----------------------------------------------
@dataclass
class _Windows:
    """Per-window results gathered over the chunks."""

    start_ns: list[np.ndarray] = field(default_factory=list)
    log_probs: list[np.ndarray] = field(default_factory=list)
    segment: list[np.ndarray] = field(default_factory=list)

    def add(self, start_ns: np.ndarray, log_probs: np.ndarray, segment: int) -> None:
        self.start_ns.append(start_ns.astype(np.int64))
        self.log_probs.append(log_probs.astype(np.float32))
        self.segment.append(np.full(len(start_ns), segment, dtype=np.int32))


class _Segmenter:
    """Cuts a stream of samples (in the model's unit, at the recording's rate) into segments and windows.

    A segment is a run of samples without a gap longer than ``gap_ns`` or a clock set back. Windows start every
    ``stride`` model-rate samples from the segment's start; a window is classified once the samples after it
    (its margin) have arrived, or at the segment's end.
    """

    def __init__(self, trained: TrainedModel, channels: list[str], opts: Any, rate_in: float, up: int, down: int,
                 stride: int, gap_ns: int, out: _Windows) -> None:
        self.trained, self.channels, self.opts = trained, channels, opts
        self.rate_in, self.up, self.down = rate_in, up, down
        self.rate = float(trained.rate_hz)
        self.length = int(trained.window_length)
        self.stride = stride
        self.gap_ns = gap_ns
        self.margin_out = int(math.ceil((MARGIN_S + EXTRA_MARGIN_S) * self.rate))
        self.out = out
        self.segment = -1
        self.gaps: list[dict[str, Any]] = []
        self.clock_changes: list[dict[str, Any]] = []
        self.last_t: int | None = None
        self._new_segment()

    def _new_segment(self) -> None:
        self.segment += 1
        self.buf_x = np.zeros((0, len(self.channels)), dtype=np.float64)
        self.buf_t = np.zeros(0, dtype=np.int64)
        self.a = 0  # segment input index of buf[0] (a multiple of ``down``)
        self.next_start = 0  # segment output index of the next window to classify

    def feed(self, t: np.ndarray, x: np.ndarray) -> None:
        """Add a chunk's samples (times ns [n], values [n, C]); classify the windows now complete."""
        if not len(t):
            return
        prev = np.concatenate([[self.last_t if self.last_t is not None else t[0]], t[:-1]])
        dt = t - prev
        cuts = np.flatnonzero((dt > self.gap_ns) | (dt < -CLOCK_BACK_S * 1e9))
        begin = 0
        for c in cuts:
            self._append(t[begin:c], x[begin:c])
            self.flush()
            before, after = int(prev[c]), int(t[c])
            shift_min = round((after - before) / 60e9, 2)
            if after < before:
                self.clock_changes.append({"at": iso(before), "to": iso(after), "shift_min": shift_min})
                log(f"clock set back at {iso(before)} to {iso(after)} ({-shift_min:g} min): a new segment")
            else:
                self.gaps.append({"start": iso(before), "end": iso(after), "minutes": shift_min})
                log(f"gap of {shift_min:g} min from {iso(before)} to {iso(after)}: a new segment")
            self._new_segment()
            begin = c
        self._append(t[begin:], x[begin:])
        self.last_t = int(t[-1])
        self._classify(final=False)

    def _append(self, t: np.ndarray, x: np.ndarray) -> None:
        if len(t):
            self.buf_t = np.concatenate([self.buf_t, t])
            self.buf_x = np.concatenate([self.buf_x, x.astype(np.float64)])

    def flush(self) -> None:
        """Classify what is left of the segment (its end has come)."""
        self._classify(final=True)

    def _classify(self, final: bool) -> None:
        n = len(self.buf_t)
        if n == 0:
            return
        b = self.a + n  # segment input index past the buffer
        o0 = self.a * self.up // self.down
        if self.up == self.down:
            y = self.buf_x
        else:
            y = sps.resample_poly(self.buf_x, self.up, self.down, axis=0)
        limit = o0 + len(y) if final else b * self.up // self.down - self.margin_out
        last = (limit - self.length - self.next_start) // self.stride  # windows k = 0..last are complete
        if last < 0:
            return
        starts = self.next_start + self.stride * np.arange(last + 1, dtype=np.int64)
        for i in range(0, len(starts), CHUNK_WINDOWS):
            part = starts[i:i + CHUNK_WINDOWS]
            lp = chunk_probs(self.trained, y, part - o0, self.channels, self.opts, self.rate, as_log=True)
            src = np.clip(np.round(part * self.down / self.up).astype(np.int64) - self.a, 0, n - 1)
            self.out.add(self.buf_t[src], lp, self.segment)
        self.next_start = int(starts[-1]) + self.stride
        if final:
            return
        keep_from = max(self.a, (self.next_start - self.margin_out) * self.down // self.up)
        keep_from -= keep_from % self.down
        drop = keep_from - self.a
        if drop > 0:
            self.buf_x, self.buf_t = self.buf_x[drop:], self.buf_t[drop:]
            self.a = keep_from


# ---- the whole recording --------------------------------------------------------------------------
def predict_recording_file(trained: TrainedModel, path: str | Path, opts: RecordingOptions | None = None,
                           smoother: Any = None) -> WindowSeries:
    """Classify every window of a recording in calendar time, non-wear included.

    Args:
        trained: a run trained on a table (its own-data options give the preprocessing).
        path: a device file (``.cwa``, ``.bin``, ``.gt3x``) or a table (``.csv``, ``.csv.gz``, ``.parquet``).
        opts: :class:`RecordingOptions`.
        smoother: the run's hidden Markov model (:func:`harvit.deploy.smoothing.load_smoother`), or None.

    Returns:
        :class:`WindowSeries`; its ``info`` holds the recording, calibration, non-wear intervals, gaps, clock
        changes and the counts of chunks and windows.

    Raises:
        HarvitError: (one line) an unknown file type, channels or units the model cannot get from it, a rate
        it cannot be resampled from, a recording shorter than one window, or one with no wear at all.
    """
    opts = (opts or RecordingOptions()).validate()
    path = Path(path).expanduser()
    if not path.exists():
        raise HarvitError(f"--recording: no such file {path}")
    own = table_options(trained)
    source = path.name
    stream = open_recording(path, chunk_rows=opts.chunk_rows, timezone=opts.timezone)
    need = raw_channel_names(list(trained.channels), own.gravity_split)
    index = channel_index(need, stream)
    rate_model = float(trained.rate_hz)
    up, down = check_rate(float(stream.rate_hz), rate_model, source)
    length = int(trained.window_length)
    window_s = length / rate_model
    stride = length if opts.stride_s is None else max(1, int(round(opts.stride_s * rate_model)))
    triple = acc_triple(list(stream.channels))
    acc_index = list(triple) if triple is not None else []
    model_unit = training_acc_unit(trained)
    stream_unit = str(stream.acc_unit)
    if any(i in acc_index for i in index):
        if model_unit is None:
            raise HarvitError(f"{trained.path}: the unit of its training acceleration cannot be told from the run; "
                              "train it again with --acc-unit g or --acc-unit m/s2")
        if stream_unit not in ("g", "m/s2"):
            raise HarvitError(f"{source}: the unit of its acceleration cannot be told (a median |acc| near 1 is g, "
                              "near 9.8 m/s^2); convert it to g or m/s^2 first")
    log(f"{source}: {', '.join(stream.channels)} at {stream.rate_hz:g} Hz (acceleration in {stream.acc_unit}); "
        f"model: {', '.join(need)} at {rate_model:g} Hz, windows of {window_s:g} s every {stride / rate_model:g} s")

    # pass 1: calibration and non-wear
    log(f"pass 1/2: epoch statistics of {source} ({opts.epoch_s:g} s epochs)")
    stats = epoch_stats(stream, epoch_s=opts.epoch_s)
    n_rows = int(np.sum(stats.n))
    if n_rows == 0:
        raise HarvitError(f"{source}: the recording holds no samples")
    span_s = (int(stats.time_ns[-1]) - int(stats.time_ns[0])) / 1e9 + opts.epoch_s
    if n_rows / float(stream.rate_hz) < window_s:
        raise HarvitError(f"{source}: {n_rows} samples ({n_rows / float(stream.rate_hz):.1f} s) are shorter than "
                          f"one window of {window_s:g} s")
    cal = calibrate(stats) if opts.calibrate and acc_index else None
    if cal is not None:
        log(f"calibration: {'applied' if cal.ok else 'not applied (' + cal.note + ')'}, error "
            f"{cal.error_before_mg:.1f} -> {cal.error_after_mg:.1f} mg from {cal.n_stationary} still epochs")
    mask = nonwear_mask(stats, sd_threshold_g=opts.nonwear_sd_g, min_minutes=opts.nonwear_min)
    spans = intervals(mask, stats.time_ns, opts.epoch_s)
    nw = np.array([[int(s), int(e)] for s, e in spans], dtype=np.int64).reshape(-1, 2)
    nw_min = float((nw[:, 1] - nw[:, 0]).sum() / 60e9) if len(nw) else 0.0
    log(f"non-wear: {len(nw)} intervals, {nw_min:.0f} min of {span_s / 60:.0f}")
    if len(mask) and bool(np.all(mask)):
        raise HarvitError(f"{source}: no wear at all (the whole recording is still: every axis' SD below "
                          f"{opts.nonwear_sd_g * 1000:g} mg); nothing to predict")

    # pass 2: windows
    out = _Windows()
    seg = _Segmenter(trained, need, own, float(stream.rate_hz), up, down, stride,
                     gap_ns=int(max(window_s, 1.0) * 1e9), out=out)
    stream = open_recording(path, chunk_rows=opts.chunk_rows, timezone=opts.timezone)
    bar = progress_bar(True, n_rows, f"predict {source}", unit="row", unit_scale=True)
    done = chunks = 0
    next_log = 0.1
    for chunk in stream:
        values = np.asarray(chunk.values)
        t = np.asarray(chunk.time_ns, dtype=np.int64)
        x = _model_units(values, index, acc_index, stream_unit, model_unit, cal)
        finite = np.isfinite(x).all(axis=1)
        if not finite.all():
            t, x = t[finite], x[finite]
        seg.feed(t, x)
        chunks += 1
        done += len(chunk.time_ns)
        if bar is not None:
            bar.update(len(chunk.time_ns))
        elif done >= next_log * n_rows:
            log(f"pass 2/2: {done:,} of {n_rows:,} samples ({100 * done / n_rows:.0f}%), "
                f"{sum(len(s) for s in out.start_ns):,} windows")
            next_log += 0.1
    seg.flush()
    if bar is not None:
        bar.close()
    if not out.start_ns:
        raise HarvitError(f"{source}: no segment of the recording holds one window of {window_s:g} s")
    start_ns = np.concatenate(out.start_ns)
    log_probs = np.concatenate(out.log_probs)
    segment = np.concatenate(out.segment).astype(np.int64)
    del out
    credit_s = min(stride, length) / rate_model
    window_ns = int(round(window_s * 1e9))
    nonwear = _overlaps(start_ns, start_ns + window_ns, nw)
    label = log_probs.argmax(axis=1).astype(np.int64)
    smoothed = False
    if smoother is not None and opts.smooth == "hmm" and (~nonwear).any():
        label = _smooth(label, log_probs, nonwear, segment, start_ns, smoother, credit_s)
        smoothed = True
    probs = np.exp(log_probs.astype(np.float64))
    probs /= probs.sum(axis=1, keepdims=True)
    k = len(trained.classes)
    prob = probs[np.arange(len(label)), np.minimum(label, k - 1)].astype(np.float32)
    label[nonwear] = k
    prob[nonwear] = np.nan
    log(f"pass 2/2: {len(label):,} windows from {chunks} chunks, {int(nonwear.sum()):,} in non-wear"
        + (", smoothed by the run's hidden Markov model" if smoothed else ""))
    info: dict[str, Any] = {
        "recording": str(path), "source": stream.source, "device": stream.device,
        "reader": {k: v for k, v in stream.info.items() if k != "warnings"},
        "reader_warnings": list(stream.info.get("warnings", []))[:20], "rate_hz": float(stream.rate_hz),
        "channels": list(stream.channels), "acc_unit": stream_unit, "model_acc_unit": model_unit,
        "samples": n_rows, "chunks": chunks, "start": iso(int(stats.time_ns[0])),
        "end": iso(int(stats.time_ns[-1]) + int(opts.epoch_s * 1e9)),
        "windows": int(len(label)), "window_s": window_s, "stride_s": stride / rate_model,
        "segments": int(segment.max()) + 1, "gaps": seg.gaps, "clock_changes": seg.clock_changes,
        "calibration": _calibration_dict(cal),
        "nonwear_intervals": [{"start": iso(int(s)), "end": iso(int(e)), "minutes": round((e - s) / 60e9, 2)}
                              for s, e in nw],
        "nonwear_rule": {"sd_threshold_g": opts.nonwear_sd_g, "min_minutes": opts.nonwear_min,
                         "epoch_s": opts.epoch_s},
        "smoothing": "hmm" if smoothed else "none",
    }
    return WindowSeries(classes=list(trained.classes), start_ns=start_ns, label=label, prob=prob,
                        probs=probs.astype(np.float32), segment=segment, credit_s=credit_s, window_s=window_s,
                        info=info)


def _model_units(values: np.ndarray, index: list[int], acc_index: list[int], stream_unit: str,
                 model_unit: str | None, cal: Any) -> np.ndarray:
    """The model's raw channels [n, C] of a chunk: acceleration to g, calibrated, then to the model's unit."""
    x = np.asarray(values, dtype=np.float64)
    if acc_index:
        acc = x[:, acc_index] / (G if stream_unit == "m/s2" else 1.0)
        if cal is not None and cal.ok:
            acc = np.asarray(cal.apply(acc), dtype=np.float64)
        x = x.copy() if not x.flags.writeable else x
        x[:, acc_index] = acc * (G if model_unit == "m/s2" else 1.0)
    return x[:, index]


def _overlaps(start: np.ndarray, end: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """bool [N]: window [start, end) overlaps one of the sorted, disjoint ``spans`` [M, 2] (ns)."""
    if not len(spans):
        return np.zeros(len(start), dtype=bool)
    order = np.argsort(spans[:, 0], kind="stable")
    lo, hi = spans[order, 0], spans[order, 1]
    i = np.searchsorted(lo, end, side="left") - 1
    ok = i >= 0
    return ok & (hi[np.maximum(i, 0)] > start)


def _smooth(label: np.ndarray, log_probs: np.ndarray, nonwear: np.ndarray, segment: np.ndarray,
            start_ns: np.ndarray, smoother: Any, step_s: float) -> np.ndarray:
    """The Viterbi path of the worn windows; a segment change, a gap or non-wear starts a new sequence."""
    wear = np.flatnonzero(~nonwear)
    breaks = np.ones(len(wear), dtype=bool)
    if len(wear) > 1:
        adjacent = (np.diff(wear) == 1) & (segment[wear[1:]] == segment[wear[:-1]]) & (
            np.diff(start_ns[wear]) <= 1.5 * step_s * 1e9)
        breaks[1:] = ~adjacent
    out = label.copy()
    out[wear] = np.asarray(smooth_log_probs(log_probs[wear], smoother, step_s, breaks), dtype=np.int64)
    return out


def _calibration_dict(cal: Any) -> dict[str, Any] | None:
    return None if cal is None else cal.as_dict()


__all__ = ["NONWEAR", "RecordingOptions", "channel_index", "check_rate", "predict_recording_file",
           "training_acc_unit"]
