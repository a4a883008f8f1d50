"""Time columns of recorded tables: units, sampling rate, gaps, a regular grid, resampling.

A time column may hold seconds, milliseconds, microseconds, nanoseconds (relative or since the epoch)
or ISO datetimes. The unit is detected in this order: a datetime column; a name suffix (``_s``,
``_ms``, ``_us``, ``_ns``); epoch magnitudes (1e9 s, 1e12 ms, 1e15 us, 1e18 ns around today); else
the unit that puts the median step's rate in [2, 2000] Hz, trying s, ms, us, ns in turn.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy import signal

from harvit.utils.errors import HarvitError

UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
MAX_GAP_S = 1.0
"""A step longer than this splits a recording into pieces."""
RATE_RANGE_HZ = (2.0, 2000.0)
JITTER = 0.25
"""Timestamps further than this many sample periods from the ideal grid are resampled onto it."""


def detect_unit(name: str, t: np.ndarray) -> str:
    """The unit of a numeric time column ``t`` (float [n]) named ``name``: ``s``, ``ms``, ``us`` or ``ns``."""
    lower = name.lower()
    for unit in ("ms", "us", "ns", "s"):
        if lower.endswith(f"_{unit}") or lower.endswith(f"({unit})") or lower.endswith(f"[{unit}]"):
            return unit
    finite = t[np.isfinite(t)]
    if finite.size == 0:
        raise HarvitError(f"time column {name!r} holds no numbers")
    magnitude = float(np.median(np.abs(finite)))
    for unit, epoch_floor in (("ns", 1e17), ("us", 1e14), ("ms", 1e11), ("s", 1e8)):
        if magnitude >= epoch_floor:
            return unit
    steps = np.diff(finite)
    steps = steps[steps > 0]
    if steps.size == 0:
        raise HarvitError(f"time column {name!r} never increases; expected sample times")
    step = float(np.median(steps))
    for unit, scale in UNITS.items():
        if RATE_RANGE_HZ[0] <= 1.0 / (step * scale) <= RATE_RANGE_HZ[1]:
            return unit
    raise HarvitError(
        f"time column {name!r}: median step {step:g} gives no rate in {RATE_RANGE_HZ[0]:g}..{RATE_RANGE_HZ[1]:g} Hz "
        "in s, ms, us or ns; name the unit with a suffix (e.g. time_ms) or pass --rate without a time column"
    )


def median_rate(t: np.ndarray) -> float:
    """Sampling rate in Hz from the median positive step of ``t`` (seconds, float [n], n >= 2), to 6 significant
    digits (so float noise in the times does not show as 50.000000000001 Hz)."""
    steps = np.diff(t)
    steps = steps[steps > 0]
    if steps.size == 0:
        raise HarvitError("time never increases; expected at least two distinct sample times")
    return round_rate(1.0 / float(np.median(steps)))


def round_rate(rate_hz: float) -> float:
    """``rate_hz`` to 6 significant digits."""
    return float(f"{rate_hz:.6g}")


def gap_pieces(t: np.ndarray, max_gap_s: float = MAX_GAP_S) -> list[tuple[int, int]]:
    """``[start, end)`` index ranges of ``t`` (seconds, increasing) split where a step exceeds ``max_gap_s``."""
    cut = np.flatnonzero(np.diff(t) > max_gap_s) + 1
    edges = np.concatenate([[0], cut, [len(t)]]).astype(np.int64)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def is_jittery(t: np.ndarray, rate_hz: float) -> bool:
    """Whether samples at times ``t`` (seconds) stray more than :data:`JITTER` periods from a regular grid."""
    if len(t) < 2:
        return False
    ideal = t[0] + np.arange(len(t)) / rate_hz
    return bool(np.max(np.abs(t - ideal)) * rate_hz > JITTER)


def onto_grid(t: np.ndarray, x: np.ndarray, labels: np.ndarray, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation of samples at irregular times onto ``t[0] + k / rate_hz``.

    Args:
        t: float64 [n] increasing times in seconds.
        x: [n, C] samples.
        labels: int [n] label codes.
        rate_hz: grid rate in Hz.

    Returns:
        (float64 [m, C], int [m] label of the latest sample at or before each grid time), m =
        ``floor((t[-1] - t[0]) * rate_hz) + 1``.
    """
    m = int(np.floor((t[-1] - t[0]) * rate_hz + 1e-9)) + 1
    grid = t[0] + np.arange(m) / rate_hz
    out = np.empty((m, x.shape[1]), dtype=np.float64)
    for c in range(x.shape[1]):
        out[:, c] = np.interp(grid, t, x[:, c])
    before = np.clip(np.searchsorted(t, grid + 1e-9 / rate_hz, side="right") - 1, 0, len(t) - 1)
    return out, labels[before]


def rate_ratio(from_hz: float, to_hz: float, max_denominator: int = 1000) -> tuple[int, int]:
    """(up, down) integers with ``up / down ~= to_hz / from_hz`` for :func:`scipy.signal.resample_poly`."""
    ratio = Fraction(to_hz / from_hz).limit_denominator(max_denominator)
    return ratio.numerator, ratio.denominator


def resample(x: np.ndarray, labels: np.ndarray, from_hz: float, to_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Anti-aliased polyphase resampling of one regular recording piece.

    Args:
        x: [n, C] samples at ``from_hz``.
        labels: int [n] label codes.
        from_hz, to_hz: rates in Hz.

    Returns:
        (float64 [m, C] at ``to_hz``, int [m] the label of the input sample nearest each output time),
        m = ``ceil(n * up / down)``.
    """
    up, down = rate_ratio(from_hz, to_hz)
    if up == down:
        return np.asarray(x, dtype=np.float64), labels
    y = signal.resample_poly(np.asarray(x, dtype=np.float64), up, down, axis=0)
    src = np.clip(np.round(np.arange(y.shape[0]) * down / up).astype(np.int64), 0, len(labels) - 1)
    return y, labels[src]
