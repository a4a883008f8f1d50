"""A table's time column in seconds, the files' rates, and the check that a unit does not shred a table.

The unit itself is chosen by :func:`harvit.data.timebase.detect_unit` (or ``--time-unit``); this
module applies it to a pandas column, and refuses a reading that cuts the recordings into fragments:
more than :data:`MAX_PIECES_PER_RECORDING` pieces per recording with most samples in pieces shorter
than :data:`harvit.data.timebase.MAX_GAP_S` (what a wrong unit does: every step a gap).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harvit.data.file_notes import FileNotes
from harvit.data.tables import numeric_column
from harvit.data.timebase import MAX_GAP_S, UNITS, detect_unit, round_rate
from harvit.utils.errors import HarvitError

MAX_PIECES_PER_RECORDING = 10
RATE_TOLERANCE = 0.05
"""Files whose rates differ by more than this fraction are not one data set."""


def seconds(values: pd.Series, name: str, where: str, unit: str, notes: FileNotes) -> tuple[np.ndarray, str]:
    """(float64 [rows] seconds relative to the first value, the unit used) of a time column; the unit goes into
    ``notes`` (logged once for a folder of files).

    Args:
        values: the column (numbers, or ISO datetimes as text or datetimes).
        name: its name (a suffix such as ``_ms`` names the unit).
        where: the file, for messages.
        unit: ``--time-unit`` (``auto``: detected).
        notes: where the file's notes are gathered.
    """
    if not pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_datetime64_any_dtype(values.dtype):
        parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
        if parsed.notna().mean() > 0.99 and parsed.notna().any():
            values = parsed
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        if values.isna().any():
            raise HarvitError(f"{where} row {int(np.argmax(values.isna().to_numpy())) + 1} column {name!r}: "
                              "empty time; expected a time on every row")
        ns = values.to_numpy().astype("datetime64[ns]").astype(np.int64)
        notes.add(where, f"time column {name!r} holds ISO datetimes")
        return (ns - ns[0]).astype(np.float64) * 1e-9, "ISO datetime"
    raw = numeric_column(values, name, where)
    if np.isnan(raw).any():
        raise HarvitError(f"{where} row {int(np.argmax(np.isnan(raw))) + 1} column {name!r}: empty time; "
                          "expected a time on every row")
    if unit == "auto":
        unit = detect_unit(name, raw)
        notes.add(where, f"time column {name!r} is in {unit}")
    if pd.api.types.is_integer_dtype(values.dtype):
        ints = values.to_numpy(dtype=np.int64)
        return (ints - ints[0]).astype(np.float64) * UNITS[unit], unit
    return (raw - raw[0]) * UNITS[unit], unit


def check_pieces(spans: list[tuple[float, int]], recordings: int, where: str, column: str, unit: str,
                 rate_hz: float) -> None:
    """Refuse a time unit that shreds a file (see the module docstring).

    Args:
        spans: (duration in s, samples) of every gap-free piece of the file.
        recordings: the file's recordings (subject and recording pairs).
        where, column, unit, rate_hz: the file, its time column, the unit used and the rate it gave, for the message.
    """
    if len(spans) <= MAX_PIECES_PER_RECORDING * max(recordings, 1):
        return
    samples = np.array([n for _, n in spans], dtype=np.int64)
    short = np.array([d < MAX_GAP_S for d, _ in spans])
    if samples[short].sum() * 2 <= samples.sum():
        return
    raise HarvitError(
        f"{where}: time column {column!r} read in {unit} ({rate_hz:.4g} Hz) cuts {recordings} recording(s) into "
        f"{len(spans)} pieces at gaps over {MAX_GAP_S:g} s or steps back in time; set its unit with --time-unit "
        "(s, ms, us, ns)"
    )


def file_rate(steps: list[np.ndarray]) -> float:
    """The median-step rate in Hz of a file's timed pieces (``steps``: each piece's positive steps in s; 0.0
    without any)."""
    steps = [s for s in steps if s.size]
    if not steps:
        return 0.0
    return round_rate(1.0 / float(np.median(np.concatenate(steps))))


def check_rates(file_rates: dict[str, float]) -> float:
    """The median rate of the files; raise naming the two files whose rates differ most when that is over 5%."""
    if not file_rates:
        return 0.0
    lo = min(file_rates, key=file_rates.__getitem__)
    hi = max(file_rates, key=file_rates.__getitem__)
    if file_rates[hi] > file_rates[lo] * (1 + RATE_TOLERANCE):
        raise HarvitError(
            f"sampling rates differ by more than {RATE_TOLERANCE:.0%}: {hi} is at {file_rates[hi]:.4g} Hz, "
            f"{lo} at {file_rates[lo]:.4g} Hz; pass --rate HZ to resample them all, or load them separately"
        )
    return round_rate(float(np.median(list(file_rates.values()))))
