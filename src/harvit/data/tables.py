"""Reading tables of recordings (``.csv``, ``.tsv``, ``.csv.gz``, ``.parquet``, a named ``.txt``, or a folder).

One row per sample. pandas parses (the pyarrow CSV engine; ``read_parquet``). A folder is read
recursively (``s01/s01_03.csv``, ``P007/day2.parquet``), hidden files and folders skipped; ``.txt``
files are tables when named directly, or in a folder holding no other table file (beside ``.csv``
files, ``.txt`` files are notes).
Export quirks are tolerated:

- a UTF-8 byte-order mark and blank lines;
- a ``;`` ending every record (with ``,``, ``;`` or tab as the separator, sniffed from the first line);
  where records end in ``;`` and ``;`` is not the separator, every ``;`` ends a record, so two records
  written on one line are read as two;
- malformed lines (too few or too many fields) are skipped and counted in the log, when they are at most
  :data:`MAX_BAD_LINES` of the lines (more is an error naming the first);
- header-less files: named by ``--columns``; without it, a first line holding a number is data, not a
  header, and the columns are named by what they hold (:func:`name_headerless`): the first text column is
  the label, the first integer column whose value changes on at most 1% of the rows is the subject, the
  first other column that increases on at least 95% of the rows is the time; the rest, ``col<k>`` by
  their 1-based position, are channels.

Column roles and their default names (the first present wins; case-insensitive):

- label: ``label``, ``activity``, ``class`` (required); an empty cell is an unlabelled sample;
- subject: ``subject``, ``user``, ``participant`` (optional: see ``--subject-from``);
- recording: ``recording``, ``session``, ``experiment`` (optional: else each file and subject pair);
- time: ``time``, ``timestamp``, ``time_s``, ``t`` (optional: else ``--rate`` is required);
- channels: ``--channels``, else every other column that holds numbers.
"""

from __future__ import annotations

import gzip
import io
import logging
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harvit.config.fields import split_list
from harvit.data.options import OwnOptions
from harvit.utils.errors import HarvitError

log = logging.getLogger(__name__)

TABLE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".parquet")
TEXT_SUFFIXES = (".txt", ".txt.gz")
"""Read as tables only when named directly (a folder's ``.txt`` files are usually notes)."""
DEFAULT_NAMES = {
    "label": ("label", "activity", "class"),
    "subject": ("subject", "user", "participant"),
    "recording": ("recording", "session", "experiment"),
    "time": ("time", "timestamp", "time_s", "t"),
}
SEPARATORS = (",", ";", "\t")
SNIFF_BYTES = 1 << 16
MAX_BAD_LINES = 0.01
"""Largest share of malformed lines that is skipped rather than refused."""
SUBJECT_CHANGES = 0.01
"""A header-less integer column whose value changes on at most this share of rows names subjects."""
TIME_INCREASES = 0.95
"""A header-less column that increases on at least this share of rows holds times."""


def is_table(path: Path, named: bool = False) -> bool:
    """Whether ``path``'s name ends in a table suffix (:data:`TABLE_SUFFIXES`; with ``named``, the file was
    named directly, also :data:`TEXT_SUFFIXES`)."""
    return path.name.lower().endswith(TABLE_SUFFIXES + (TEXT_SUFFIXES if named else ()))


def table_files(path: Path) -> list[Path]:
    """The table files of ``path``: the file itself, or a folder's non-hidden table files at any depth, in path
    order."""
    if path.is_file():
        return [path]
    found = sorted((p for p in path.rglob("*") if p.is_file() and is_table(p, named=True)
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)),
                   key=lambda p: p.relative_to(path).as_posix())
    files = [p for p in found if is_table(p)] or found  # .txt files only where no other table is
    if not files:
        raise HarvitError(f"--dataset {path}: the folder holds no {', '.join(TABLE_SUFFIXES)} files (at any depth)")
    return files


@dataclass(frozen=True)
class Columns:
    """The columns playing each role (None: absent)."""

    label: str | None
    subject: str | None
    recording: str | None
    time: str | None
    channels: list[str]


def read_table(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read one table file into a DataFrame (quirks handled, see the module docstring).

    Args:
        path: ``.csv``, ``.tsv``, ``.txt`` (optionally ``.gz``) or ``.parquet`` file.
        columns: names of a header-less file's columns (None: the first line is the header, unless it holds a
            number: then the columns are named by :func:`name_headerless`, and ``frame.attrs["headerless"]``
            says how).
    """
    try:
        if path.name.lower().endswith(".parquet"):
            if columns:
                raise HarvitError(f"--columns: {path.name} is a parquet file, whose columns are named already")
            frame = pd.read_parquet(path, dtype_backend="pyarrow")
            if len(frame) == 0:
                raise HarvitError(f"{path}: no rows; expected a table with one row per sample")
            return frame
        sep, trailing, headed = _sniff(path)
        source: object = path
        if trailing and sep != ";":  # ';' ends each record: two records on one line are two rows
            source = io.BytesIO(_read_bytes(path).replace(b";", b"\n"))
        header = 0 if headed and not columns else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # Arrow-backed columns: no second copy of the data into NumPy blocks
            frame = pd.read_csv(source, sep=sep, engine="pyarrow", header=header, names=columns,
                                dtype_backend="pyarrow", on_bad_lines="warn")
    except HarvitError:
        raise
    except (OSError, EOFError, zlib.error, ValueError, pd.errors.ParserError, ImportError) as e:
        raise HarvitError(f"{path}: cannot read as a table ({(str(e) or type(e).__name__).splitlines()[0][:200]})") \
            from None
    _count_bad_lines(path, [str(w.message) for w in caught if "Expected" in str(w.message)], len(frame))
    if len(frame) == 0:
        raise HarvitError(f"{path}: no rows (a header only); expected a table with one row per sample")
    empty = [c for c in frame.columns if not str(c).strip() and frame[c].isna().all()]
    if header is None and not columns:
        empty = [c for c in frame.columns if frame[c].isna().all()]  # the field after a last separator
    frame = frame.drop(columns=empty)
    if header is None and not columns:
        names, how = name_headerless(frame)
        frame.columns = names
        frame.attrs["headerless"] = how
        return frame
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(set(frame.columns)) != len(frame.columns):
        raise HarvitError(f"{path}: repeated column names in {list(frame.columns)}")
    return frame


def _read_bytes(path: Path) -> bytes:
    """The whole file (gunzipped)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as f:
        return f.read()


def _count_bad_lines(path: Path, messages: list[str], rows: int) -> None:
    """Log the malformed lines the reader skipped; raise when they are over :data:`MAX_BAD_LINES` of the lines."""
    if not messages:
        return
    first = messages[0].replace("\n", " ")[:160]
    lines = rows + len(messages)
    if len(messages) > MAX_BAD_LINES * lines:
        raise HarvitError(f"{path}: {len(messages)} of {lines} lines are malformed ({first}); expected the same "
                          "number of fields on every line")
    log.warning("%s: skipped %d malformed line(s) of %d (%s)", path, len(messages), lines, first)


def name_headerless(frame: pd.DataFrame) -> tuple[list[str], str]:
    """Names for a header-less table's columns by what they hold (see the module docstring).

    Returns:
        (column names: ``label``, ``subject``, ``time`` for the roles found, ``col<k>`` for the others;
        a sentence saying which column took which role).
    """
    names = [f"col{k + 1}" for k in range(len(frame.columns))]
    head = frame.head(100_000)
    roles: dict[str, int] = {}
    for k, c in enumerate(frame.columns):
        values = head[c]
        if numeric_share(values) < 0.5:
            roles.setdefault("label", k)
            continue
        v = pd.to_numeric(values.astype(object), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        v = v[np.isfinite(v)]
        if v.size < 2:
            continue
        step = np.diff(v)
        if "subject" not in roles and np.all(v == np.round(v)) and np.mean(step != 0) <= SUBJECT_CHANGES:
            roles["subject"] = k
        elif "time" not in roles and np.mean(step > 0) >= TIME_INCREASES:
            roles["time"] = k
    for role, k in roles.items():
        names[k] = role
    how = ", ".join(f"column {k + 1} the {role}" for role, k in sorted(roles.items(), key=lambda r: r[1]))
    return names, how or "no column took a role"


def _maybe_numeric(values: pd.Series) -> pd.Series:
    """``values`` as numbers when every non-empty cell is one, else unchanged."""
    numbers = pd.to_numeric(values.astype(object), errors="coerce")
    return numbers if (numbers.notna() == values.notna()).all() else values


def _sniff(path: Path) -> tuple[str, bool, bool]:
    """(separator, whether lines end in ``;``, whether the first line is a header) from the first non-blank
    lines of a CSV (gzip or plain). A first line with a cell that is a number is data, not a header."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except (OSError, EOFError, zlib.error) as e:
        raise HarvitError(f"{path}: cannot read ({e or type(e).__name__})") from None
    text = head.decode("utf-8-sig", errors="replace")
    lines = [line.strip() for line in text.splitlines()[:20] if line.strip()]
    if not lines:
        raise HarvitError(f"{path} is empty; expected a table with one row per sample")
    trailing = all(line.endswith(";") for line in lines[:5])
    first = lines[0].rstrip(";") if trailing else lines[0]
    counts = {s: first.count(s) for s in SEPARATORS}
    sep = max(SEPARATORS, key=lambda s: counts[s])
    sep = sep if counts[sep] else ","
    cells = [c.strip().strip("\"'") for c in first.split(sep)]
    return sep, trailing, not any(_is_number(c) for c in cells if c)


def _is_number(text: str) -> bool:
    """Whether ``text`` is a finite number (``nan`` and ``inf`` may be header names)."""
    try:
        return bool(np.isfinite(float(text)))
    except ValueError:
        return False


def resolve_columns(found: list[str], opts: OwnOptions, where: str, require_label: bool = True) -> Columns:
    """Assign column roles from flags or default names.

    ``require_label=False`` (``harvit predict --table``): a table without the label column (the
    flag's, or a default name) has no labels, rather than being an error.

    Raises:
        HarvitError: a flag naming a missing column, no label column, or no channel column; the
            message names the columns found.
    """
    lower = {c.lower(): c for c in found}
    listing = ", ".join(found)

    def pick(role: str, flag_value: str | None, required: bool) -> str | None:
        flag = f"--{role}-column"
        if flag_value is not None:
            if flag_value not in found:
                raise HarvitError(f"{flag} {flag_value}: no such column in {where}; found columns: {listing}")
            return flag_value
        for name in DEFAULT_NAMES[role]:
            if name in lower:
                return lower[name]
        if required:
            raise HarvitError(
                f"{where}: no {role} column (looked for {', '.join(DEFAULT_NAMES[role])}; name it with {flag}); "
                f"found columns: {listing}"
            )
        return None

    if require_label:
        label = pick("label", opts.label_column, True)
    else:
        label = pick("label", opts.label_column if opts.label_column in found else None, False)
    subject = pick("subject", opts.subject_column, False)
    recording = pick("recording", opts.recording_column, False)
    time = pick("time", opts.time_column, False)
    roles = {c for c in (label, subject, recording, time) if c}
    if opts.channels is not None:
        channels = split_list(opts.channels)
        missing = [c for c in channels if c not in found]
        if missing:
            raise HarvitError(f"--channels: no column {', '.join(missing)} in {where}; found columns: {listing}")
        clash = [c for c in channels if c in roles]
        if clash:
            raise HarvitError(f"--channels: {', '.join(clash)} is the label, subject, recording or time column")
    else:
        channels = [c for c in found if c not in roles]
    if not channels:
        raise HarvitError(f"{where}: no channel columns besides {', '.join(sorted(roles))}; found columns: {listing}")
    return Columns(label, subject, recording, time, channels)


def numeric_columns(frame: pd.DataFrame, names: list[str], where: str) -> np.ndarray:
    """The named columns as float64 [rows, len(names)]; empty cells are NaN.

    Raises:
        HarvitError: naming the file, the 1-based data row and the column of the first non-numeric value.
    """
    out = np.empty((len(frame), len(names)), dtype=np.float64)
    for k, name in enumerate(names):
        out[:, k] = numeric_column(frame[name], name, where)
    return out


def numeric_column(values: pd.Series, name: str, where: str) -> np.ndarray:
    """One column as float64 [rows]; a non-numeric cell raises naming file, row and column."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    values = values.astype(object)  # Arrow-backed text: to_numeric would mark failures NaN, not missing
    numbers = pd.to_numeric(values, errors="coerce")
    bad = np.flatnonzero((numbers.isna() & values.notna()).to_numpy())
    if bad.size:
        row = int(bad[0])
        raise HarvitError(
            f"{where} row {row + 1} column {name!r}: found {str(values.iloc[row])[:40]!r}; expected a number "
            "(rows counted from 1 after the header)"
        )
    return numbers.to_numpy(dtype=np.float64, na_value=np.nan)


def numeric_share(values: pd.Series, sample: int = 1000) -> float:
    """Share of the first ``sample`` non-empty cells that parse as numbers (1.0 for numeric dtypes)."""
    if pd.api.types.is_numeric_dtype(values.dtype):
        return 1.0
    head = values.dropna().head(sample)
    if head.empty:
        return 0.0
    return float(pd.to_numeric(head.astype(object), errors="coerce").notna().mean())
