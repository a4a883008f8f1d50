"""UCI HAR (UCI dataset 240): the official pre-cut 9-channel windows.

Input, in ``<data_dir>/uci_har/``: the ``UCI HAR Dataset/`` folder, ``UCI HAR Dataset.zip``
(top folder ``UCI HAR Dataset/``), or the official outer zip that holds ``UCI HAR Dataset.zip``.
Read, for split in train/test:

- ``<split>/Inertial Signals/{body_acc,body_gyro,total_acc}_{x,y,z}_<split>.txt``: N rows x 128 values;
- ``<split>/y_<split>.txt`` (1..6) and ``<split>/subject_<split>.txt``;
- ``activity_labels.txt``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harvit.data.archive import Source, open_source
from harvit.data.cache import cache_key, cached_dataset
from harvit.data.catalog import register_dataset
from harvit.data.download import fetch_official
from harvit.data.hapt import read_activity_labels
from harvit.data.signals import (
    CHANNELS,
    DEFAULT_PREPROCESSING,
    Preprocessing,
    check_nan_policy,
    fill_nonfinite,
    nonfinite_mask,
    parse_numeric_text,
)
from harvit.data.windows import Dataset, Windows
from harvit.utils.errors import HarvitError

UCI_HAR_URL = "https://archive.ics.uci.edu/static/public/240/human+activity+recognition+using+smartphones.zip"
SUBDIR = "uci_har"
FOLDER = "UCI HAR Dataset"
ZIP = "UCI HAR Dataset.zip"
OFFICIAL_ZIP = "human+activity+recognition+using+smartphones.zip"
MARKER = "train/y_train.txt"
ACTIVITY_LABELS = "activity_labels.txt"
MANIFEST = "uci_har_git_blob_sha1.tsv"
RATE_HZ = 50.0
WINDOW = 128
STRIDE = 64
SPLITS = ("train", "test")


def signal_file(channel: str, split: str) -> str:
    """Member path of one channel's file, e.g. ``train/Inertial Signals/body_acc_x_train.txt``."""
    return f"{split}/Inertial Signals/{channel}_{split}.txt"


def required_files() -> list[str]:
    """Every member the loader reads, relative to the top folder."""
    files = [ACTIVITY_LABELS]
    for split in SPLITS:
        files += [f"{split}/y_{split}.txt", f"{split}/subject_{split}.txt"]
        files += [signal_file(c, split) for c in CHANNELS]
    return files


@register_dataset("UCI HAR official 9-channel windows, 6 activities", n_classes=6, fixed_windows=True)
def uci_har(data_dir: Path, nan_policy: str = "error", params: Preprocessing = DEFAULT_PREPROCESSING,
            use_cache: bool = True) -> Dataset:
    """The built-in data set ``uci_har``: :func:`load_uci_har` (its windows come pre-cut and filtered, so
    ``params`` must be the defaults; :func:`harvit.data.load_dataset` checks that)."""
    return load_uci_har(data_dir, nan_policy, use_cache)


def load_uci_har(data_dir: Path, nan_policy: str = "error", use_cache: bool = True) -> Dataset:
    """Load UCI HAR from ``data_dir`` (downloading if allowed), through the cache.

    Returns:
        Dataset ``uci_har``: x float32 [N, 9, 128] in :data:`CHANNELS` order, y 0..5, 50 Hz.
    """
    check_nan_policy(nan_policy)
    path = locate_uci_har(Path(data_dir))
    with open_source(path, MARKER) as src:
        fingerprint = src.fingerprint(required_files())
    key = cache_key(dataset="uci_har", source=fingerprint, nan_policy=nan_policy, window=WINDOW)
    ds = cached_dataset("uci_har", key, lambda: build_uci_har(path, nan_policy), use_cache)
    for w in (ds.train, ds.test):
        w.meta["cache_key"] = key
    return ds


def locate_uci_har(data_dir: Path, allow_download: bool = True) -> Path:
    """The first complete UCI HAR folder or zip in ``data_dir/uci_har/``; if none, download it there.

    A candidate that exists but lacks a needed file is reported when nothing else can be used.
    """
    folder = data_dir / SUBDIR
    candidates = [folder / FOLDER, folder / ZIP, folder / OFFICIAL_ZIP]
    if folder.is_dir():
        others = (p for p in folder.glob("*.zip") if p not in candidates and not p.name.startswith("."))
        candidates += sorted(others)
    first_problem = None
    for candidate in candidates:
        if not candidate.exists():
            continue
        try:
            with open_source(candidate, MARKER) as src:
                absent = [rel for rel in required_files() if not src.has(rel)]
                if not absent:
                    return candidate
                problem = f"{src.where(absent[0])} is missing ({len(absent)} files missing)"
                first_problem = first_problem or problem
        except HarvitError as e:
            first_problem = first_problem or str(e)
    missing = (
        f"UCI HAR data not found: put the '{FOLDER}' folder with its Inertial Signals, '{ZIP}' or the "
        f"official zip ({UCI_HAR_URL}) in {folder}/, or set HARVIT_DATA_DIR to a folder holding uci_har/"
    )
    if first_problem:
        missing = f"{first_problem}; {missing}"
    if not allow_download:
        raise HarvitError(missing)
    return fetch_official(UCI_HAR_URL, folder / OFFICIAL_ZIP, MARKER, MANIFEST, required_files(), missing)


def build_uci_har(path: Path, nan_policy: str = "error") -> Dataset:
    """Read UCI HAR's windows from a folder or zip (no cache)."""
    with open_source(path, MARKER) as src:
        classes = read_activity_labels(src)
        splits = {split: read_split(src, split, classes, nan_policy) for split in SPLITS}
    for w in splits.values():
        w.meta["source"] = str(path)
    return Dataset("uci_har", splits["train"], splits["test"])


def read_split(src: Source, split: str, classes: list[str], nan_policy: str = "error") -> Windows:
    """One split's windows: x float32 [N, 9, 128], y 0..len(classes)-1, subjects."""
    y_rel, subject_rel = f"{split}/y_{split}.txt", f"{split}/subject_{split}.txt"
    y = read_ints(src, y_rel, 1, len(classes))
    n = len(y)
    subject = read_ints(src, subject_rel, 0, None)
    _check_rows(src, subject_rel, len(subject), n, y_rel)
    x = np.empty((n, len(CHANNELS), WINDOW), dtype=np.float32)
    bad = np.zeros(n, dtype=bool)
    for c, channel in enumerate(CHANNELS):
        rel = signal_file(channel, split)
        table = parse_numeric_text(
            src.read(rel), src.where(rel), ncols=WINDOW, hint="windows shorter than the window length"
        )
        _check_rows(src, rel, table.shape[0], n, y_rel)
        bad |= _apply_nan_policy(table, src.where(rel), nan_policy)
        x[:, c, :] = table
    meta = {"dataset": "uci_har", "split": split, "stride": STRIDE, "nan_policy": nan_policy}
    meta["dropped_windows"] = 0
    if nan_policy == "drop" and bad.any():
        meta["dropped_windows"] = int(bad.sum())
        x, y, subject = x[~bad], y[~bad], subject[~bad]
    return Windows(x, y - 1, subject, list(CHANNELS), list(classes), RATE_HZ, meta)


def _apply_nan_policy(table: np.ndarray, where: str, nan_policy: str) -> np.ndarray:
    """Handle NaN/Inf in a [N, 128] table in place; return bool [N], True for rows that had any."""
    rows = nonfinite_mask(table, where, nan_policy).any(axis=1)
    if not rows.any():
        return rows
    if nan_policy == "interpolate":
        for i in np.nonzero(rows)[0]:
            try:
                table[i] = fill_nonfinite(table[i][:, None])[:, 0]
            except HarvitError:
                raise HarvitError(f"{where} line {i + 1}: no finite value to interpolate from") from None
    else:
        table[rows] = 0.0
    return rows


def read_ints(src: Source, rel: str, low: int, high: int | None) -> np.ndarray:
    """A one-column file of integers in ``low..high`` -> int64 [N]."""
    where = src.where(rel)
    table = parse_numeric_text(src.read(rel), where, ncols=1)[:, 0]
    ok = np.isfinite(table) & (table == np.round(table)) & (table >= low)
    if high is not None:
        ok &= table <= high
    if not ok.all():
        i = int(np.argmin(ok))
        expected = f"integers {low}..{high}" if high is not None else f"integers >= {low}"
        raise HarvitError(f"{where} row {i + 1}: found {table[i]:g}; expected {expected}")
    return table.astype(np.int64)


def _check_rows(src: Source, rel: str, found: int, expected: int, reference: str) -> None:
    if found != expected:
        raise HarvitError(f"{src.where(rel)}: found {found} rows, expected {expected} (as in {reference})")
