"""Time columns of recorded tables: units, sampling rate, gaps, a regular grid, resampling.

A time column may hold seconds, milliseconds, microseconds, nanoseconds (relative, since the epoch or
since a device booted) or ISO datetimes. The unit is, in this order: ``--time-unit``; a datetime
column; a name suffix (``_s``, ``_ms``, ``_us``, ``_ns``, ``(ms)``, ``[ms]``); the unit whose median
step gives a plausible sampling rate (1-1000 Hz); where two units do (a rate of exactly 1 or 1000 Hz),
the one an epoch magnitude points to (1e9 s, 1e12 ms, 1e15 us, 1e18 ns around today), else the rate
nearer 50 Hz; where none does, the epoch magnitude. Nanoseconds since boot (~1e12-1e14, WISDM's
timestamps) are thus read as nanoseconds at 20 Hz, not as milliseconds since 1970 at 0 Hz.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from scipy import signal

from harvit.utils.errors import HarvitError

UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
TIME_UNITS = ("auto", *UNITS)
"""Values of ``--time-unit``."""
MAX_GAP_S = 1.0
"""A step longer than this (or a step back in time) splits a recording into pieces."""
RATE_RANGE_HZ = (1.0, 1000.0)
"""Sampling rates a median step may give for its unit to be taken."""
TYPICAL_RATE_HZ = 50.0
EPOCH_FLOORS = (("ns", 1e17), ("us", 1e14), ("ms", 1e11), ("s", 1e8))
"""Magnitudes from which numbers look like times since 1970 in each unit."""
NOMINAL_TOLERANCE = 0.005
"""A measured rate this close (relative) to a whole number of Hz is taken as that number."""
JITTER = 0.25
"""Timestamps further than this many sample periods from the ideal grid are resampled onto it."""


def suffix_unit(name: str) -> str | None:
    """The unit a column name ends in (``time_ms``, ``t(ms)``, ``t [ms]``), or None."""
    lower = name.lower().replace(" ", "")
    for unit in ("ms", "us", "ns", "s"):
        if lower.endswith(f"_{unit}") or lower.endswith(f"({unit})") or lower.endswith(f"[{unit}]"):
            return unit
    return None


def epoch_unit(t: np.ndarray) -> str | None:
    """The unit in which the median magnitude of ``t`` (float [n], finite) looks like a time since 1970."""
    magnitude = float(np.median(np.abs(t)))
    for unit, floor in EPOCH_FLOORS:
        if magnitude >= floor:
            return unit
    return None


def detect_unit(name: str, t: np.ndarray) -> str:
    """The unit of a numeric time column ``t`` (float [n]) named ``name``: ``s``, ``ms``, ``us`` or ``ns``
    (the order of the module docstring)."""
    by_name = suffix_unit(name)
    if by_name:
        return by_name
    finite = t[np.isfinite(t)]
    if finite.size == 0:
        raise HarvitError(f"time column {name!r} holds no numbers")
    steps = np.diff(finite)
    steps = steps[steps > 0]
    epoch = epoch_unit(finite)
    if steps.size == 0:
        if epoch:
            return epoch
        raise HarvitError(f"time column {name!r} never increases; expected sample times")
    step = float(np.median(steps))
    rates = {unit: 1.0 / (step * scale) for unit, scale in UNITS.items()}
    plausible = [u for u, r in rates.items() if RATE_RANGE_HZ[0] <= r <= RATE_RANGE_HZ[1]]
    if len(plausible) == 1:
        return plausible[0]
    if plausible:
        if epoch in plausible:
            return epoch
        return min(plausible, key=lambda u: abs(math.log(rates[u] / TYPICAL_RATE_HZ)))
    if epoch:
        return epoch
    raise HarvitError(
        f"time column {name!r}: median step {step:g} gives no rate in {RATE_RANGE_HZ[0]:g}..{RATE_RANGE_HZ[1]:g} Hz "
        "in s, ms, us or ns; set the unit with --time-unit, or pass --rate without a time column"
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


def nominal_rate(rate_hz: float) -> float:
    """``rate_hz`` as the whole number of Hz within :data:`NOMINAL_TOLERANCE` of it, else unchanged: a
    jittery clock's median step (19.9957 Hz) gives the device's nominal rate (20 Hz)."""
    whole = round(rate_hz)
    return float(whole) if whole >= 1 and abs(rate_hz / whole - 1) <= NOMINAL_TOLERANCE else rate_hz


def gap_pieces(t: np.ndarray, max_gap_s: float = MAX_GAP_S) -> list[tuple[int, int]]:
    """``[start, end)`` index ranges of ``t`` (seconds) split where a step exceeds ``max_gap_s`` or goes back."""
    step = np.diff(t)
    cut = np.flatnonzero((step > max_gap_s) | (step < 0)) + 1
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
