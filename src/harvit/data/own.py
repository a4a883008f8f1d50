"""A user's own data set, chosen by what ``--dataset PATH`` is.

- ``.csv``, ``.csv.gz``, ``.parquet``, or a folder of them: a table of recordings
  (:mod:`harvit.data.tables`, :mod:`harvit.data.recordings`);
- ``.npz``: window arrays (:mod:`harvit.data.arrays`);
- ``NAME_TRAIN.ts`` (with ``NAME_TEST.ts`` beside it), or a folder holding such a pair (:mod:`harvit.data.ts_files`);
- with ``--annotations``: a long recording (a device file or a table of samples, or a folder of them) labelled by
  a separate table of intervals (:mod:`harvit.data.annotations`).

Test split: a file's own split is kept (``.ts``; ``.npz`` with ``split``); else ``--test-subjects``, else
a seeded draw of ``--test-fraction`` of the subjects; data without subjects are split by window,
stratified by class, with a warning in the log and in :attr:`Dataset.notes`.

Prepared windows are cached under a key of every file's name, size and SHA-256 (each file hashed in full)
and every option.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from harvit.config.fields import split_list
from harvit.data.annotations import annotated_sources, read_annotated
from harvit.data.arrays import read_npz
from harvit.data.cache import cache_key, cached_dataset
from harvit.data.devices import is_device_file
from harvit.data.options import TEST_SPLIT_SEED, OwnOptions
from harvit.data.recordings import TableData, read_tables, table_windows
from harvit.data.splits import NO_SUBJECT_NOTE, stratified_split, subject_test_split
from harvit.data.tables import is_table, table_files
from harvit.data.ts_files import read_ts, ts_pair
from harvit.data.windows import NO_SUBJECT, Dataset, Windows
from harvit.utils.errors import HarvitError

log = logging.getLogger(__name__)

KINDS = ("table", "npz", "ts", "recording")
TABLE_ONLY = ("label_column", "subject_column", "recording_column", "time_column", "time_unit", "subject_from",
              "channels", "columns",
              "window_s", "overlap", "train_overlap", "lowpass", "gravity_split")
"""Options that only tables use: giving one with ``.npz`` or ``.ts`` is an error, not silently ignored."""
NOT_ANNOTATED = ("label_column", "subject_column", "recording_column", "subject_from", "columns", "time_unit")
"""Options a recording labelled by ``--annotations`` has no use for (labels and subjects come from the files)."""


def looks_like_path(name: str) -> bool:
    """Whether a ``--dataset`` value names a file or folder (an existing path, or one with a separator or suffix)."""
    return "/" in name or "\\" in name or Path(name).exists() or Path(name).suffix != ""


def dataset_kind(path: Path) -> str:
    """``table``, ``npz`` or ``ts`` by what ``path`` is; anything else raises naming ``--dataset``."""
    if not path.exists():
        raise HarvitError(f"--dataset {path}: no such file or folder; expected a built-in name or a path")
    name = path.name.lower()
    if path.is_file():
        if is_table(path, named=True):
            return "table"
        if name.endswith(".npz"):
            return "npz"
        if name.endswith(".ts"):
            return "ts"
    elif path.is_dir():
        if any(path.glob("*_TRAIN.ts")):
            return "ts"
        if any(is_table(p, named=True) for p in path.rglob("*") if p.is_file()):
            return "table"
    if is_device_file(path) or (path.is_dir() and any(is_device_file(p) for p in path.rglob("*"))):
        raise HarvitError(f"--dataset {path}: device files are long recordings without labels; label them with "
                          "--annotations TABLE (start, end, label)")
    raise HarvitError(
        f"--dataset {path}: expected .csv, .tsv, .txt (optionally .gz), .parquet (or a folder of them, at any depth), "
        ".npz, or NAME_TRAIN.ts"
    )


def source_files(path: Path, kind: str) -> list[Path]:
    """The files a data set is read from."""
    if kind == "table":
        return table_files(path)
    if kind == "ts":
        return list(ts_pair(path))
    return [path]


def fingerprint(files: list[Path]) -> list[list]:
    """``[name, size, sha256]`` per file (read in 4 MB blocks)."""
    out = []
    for f in files:
        digest = hashlib.sha256()
        with open(f, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        out.append([f.name, f.stat().st_size, digest.hexdigest()])
    return out


def load_own(
    path: str | Path,
    options: OwnOptions | None = None,
    nan_policy: str = "error",
    use_cache: bool = True,
    stride: int | None = None,
) -> Dataset:
    """Load a user's data set from ``path`` through the cache.

    Args:
        path: a table file or folder, an ``.npz``, or a ``.ts`` pair (see the module docstring).
        options: columns, rate, windows, preprocessing and test split (default :class:`OwnOptions`).
        nan_policy: empty/NaN channel values in tables: ``error``, ``drop`` (windows holding them) or ``interpolate``.
        stride: tables only: step between window starts in samples (None: from ``--overlap``).

    Returns:
        Dataset named after the path; x float32 [N, C, T] in the files' units, y int64 [N], subject
        int64 [N] (:data:`NO_SUBJECT` without subjects).
    """
    options = (options or OwnOptions()).validate()
    path = Path(path).expanduser()
    kind = "recording" if options.annotations else dataset_kind(path)
    if kind == "recording":
        given = [name for name in NOT_ANNOTATED if name in options.changed()]
        if given:
            flags = ", ".join("--" + g.replace("_", "-") for g in given)
            raise HarvitError(f"{flags}: not used with --annotations (labels come from the annotation table, "
                              "subjects from the recordings' file names)")
    elif kind != "table":
        given = [name for name in TABLE_ONLY if name in options.changed()]
        if given:
            flags = ", ".join("--" + g.replace("_", "-") for g in given)
            raise HarvitError(f"{flags}: only for tables of recordings; {path.name} holds ready windows")
        if stride is not None:
            raise HarvitError(f"--train-stride: {path.name} holds ready windows; only tables are windowed here")
    files = annotated_sources(path, options) if kind == "recording" else source_files(path, kind)
    name = _name(files[0] if kind == "ts" else path)
    key = cache_key(dataset="own", kind=kind, source=fingerprint(files), options=options.as_dict(),
                    nan_policy=nan_policy, stride=stride)

    def build() -> Dataset:
        if kind == "table":
            return _table_dataset(name, path, files, options, nan_policy, stride)
        if kind == "recording":
            return _table_dataset(name, path, files, options, nan_policy, stride,
                                  read_annotated(path, options))
        if kind == "npz":
            return _npz_dataset(name, path, options)
        return _ts_dataset(name, files, options)

    detail = f"training stride {stride}" if stride is not None else ""
    ds = cached_dataset(f"own-{name}", key, build, use_cache, detail)
    for w in (ds.train, ds.test):
        w.meta["cache_key"] = key
    for note in ds.notes:
        log.warning("%s: %s", name, note)
    return ds


def _name(path: Path) -> str:
    name = path.name
    for suffix in (".csv.gz", ".csv", ".parquet", ".npz", ".ts", ".cwa", ".bin", ".gt3x"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    if name.upper().endswith(("_TRAIN", "_TEST")):
        name = name.rsplit("_", 1)[0]
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name) or "data"


def _table_dataset(name: str, path: Path, files: list[Path], options: OwnOptions, nan_policy: str,
                   stride: int | None, data: TableData | None = None) -> Dataset:
    """Windows of tables of recordings (``data``: the recordings already read, e.g. labelled by annotations)."""
    kind = "table" if data is None else "recording"
    data = data or read_tables(files, options, root=path if path.is_dir() else None)
    tw = table_windows(data, options, nan_policy, stride)
    del data
    present = np.unique(tw.y)
    if len(present) < len(tw.classes):
        empty = [c for k, c in enumerate(tw.classes) if k not in set(present.tolist())]
        longest = tw.stats.get("longest_window_s")
        keeps = (f"; --window-s {longest:g} (the longest window that keeps every class) keeps them" if longest
                 else "")
        log.warning("%s: no window for class(es) %s (their labelled runs are shorter than a window of %g s); "
                    "dropped%s", name, ", ".join(empty), options.window_s, keeps)
        tw.classes = [tw.classes[k] for k in present]
        tw.y = np.searchsorted(present, tw.y).astype(np.int64)
    meta = {"dataset": name, "source": str(path), "kind": kind, "stride": tw.stride, "nan_policy": nan_policy,
            "options": options.as_dict(), "subject_names": {str(k): v for k, v in tw.subject_names.items()},
            "files": [str(f) for f in files], "load_stats": tw.stats}
    log.info("%s: %d windows of %d samples (%g Hz), %d channels, %d classes", name, len(tw.y), tw.x.shape[2],
             tw.rate_hz, tw.x.shape[1], len(tw.classes))
    return _split(name, tw.x, tw.y, tw.subject, tw.channels, tw.classes, tw.rate_hz, None, options,
                  tw.subject_names, meta)


def _npz_dataset(name: str, path: Path, options: OwnOptions) -> Dataset:
    a = read_npz(path, options.rate)
    subject = a.subject if a.subject is not None else np.full(len(a.y), NO_SUBJECT, dtype=np.int64)
    meta = {"dataset": name, "source": str(path), "kind": "npz"}
    return _split(name, a.x, a.y, subject, a.channels, a.classes, a.rate_hz, a.is_test, options, {}, meta)


def _ts_dataset(name: str, files: list[Path], options: OwnOptions) -> Dataset:
    train, test = (read_ts(f) for f in files)
    if train.x.shape[1:] != test.x.shape[1:]:
        raise HarvitError(f"{files[1]}: cases of shape {list(test.x.shape[1:])} [D, T]; {files[0].name} has "
                          f"{list(train.x.shape[1:])}; expected equal lengths and dimensions")
    classes = train.class_values or sorted(set(train.labels))
    for f, split in zip(files, (train, test), strict=True):
        unknown = sorted(set(split.labels) - set(classes))
        if unknown:
            raise HarvitError(f"{f}: labels {', '.join(unknown[:5])} are not in @classLabel of {files[0].name}")
    index = {c: k for k, c in enumerate(classes)}
    x = np.concatenate([train.x, test.x])
    y = np.array([index[v] for v in train.labels + test.labels], dtype=np.int64)
    is_test = np.arange(len(y)) >= len(train.labels)
    rate = options.rate or 1.0
    if not options.rate:
        log.info("%s: .ts files state no rate; taking 1 Hz (one sample per step; pass --rate to state it)", name)
    meta = {"dataset": name, "source": str(files[0]), "kind": "ts"}
    d = x.shape[1]
    channels = [f"dim{k}" for k in range(d)]
    return _split(name, x, y, np.full(len(y), NO_SUBJECT, dtype=np.int64), channels, classes, rate, is_test,
                  options, {}, meta)


def _split(name: str, x: np.ndarray, y: np.ndarray, subject: np.ndarray, channels: list[str], classes: list[str],
           rate_hz: float, is_test: np.ndarray | None, options: OwnOptions, subject_names: dict[int, str],
           meta: dict) -> Dataset:
    """Split windows into train and test (the file's own split, subjects, or stratified windows) and check
    the classes."""
    notes: list[str] = []
    has_subjects = bool((subject != NO_SUBJECT).any())
    if is_test is not None:
        if options.test_subjects is not None:
            raise HarvitError(f"--test-subjects: {name} has its own train/test split, which is kept")
        how = "the file's own split"
    elif has_subjects and (options.test_subjects is not None or len(np.unique(subject)) >= 2):
        tokens = split_list(options.test_subjects) if options.test_subjects is not None else None
        is_test, chosen = subject_test_split(subject, tokens, options.test_fraction, TEST_SPLIT_SEED, subject_names)
        how = f"test subjects {', '.join(subject_names.get(s, str(s)) for s in chosen)}"
    else:
        if options.test_subjects is not None:
            raise HarvitError(f"--test-subjects: {name} names no subjects; use --test-fraction")
        is_test = stratified_split(y, options.test_fraction, TEST_SPLIT_SEED)
        notes.append(NO_SUBJECT_NOTE if not has_subjects else NO_SUBJECT_NOTE.replace("name no subjects",
                                                                                      "name one subject only"))
        how = f"{options.test_fraction:g} of each class's windows (stratified, no subjects)"
    log.info("%s: test split: %s", name, how)
    _check_classes(name, y, is_test, classes)
    splits = {}
    for split, mask in (("train", ~is_test), ("test", is_test)):
        splits[split] = Windows(x[mask], y[mask], subject[mask], list(channels), list(classes), float(rate_hz),
                                {**meta, "split": split, "test_split": how})
    return Dataset(name, splits["train"], splits["test"], notes)


def _check_classes(name: str, y: np.ndarray, is_test: np.ndarray, classes: list[str]) -> None:
    present = np.unique(y)
    if len(present) < 2:
        found = classes[int(present[0])] if len(present) else "none"
        raise HarvitError(f"{name}: the windows hold one class only ({found}); expected at least 2 classes")
    train_classes = set(np.unique(y[~is_test]).tolist())
    missing = sorted(set(np.unique(y[is_test]).tolist()) - train_classes)
    if missing:
        raise HarvitError(f"{name}: test class(es) {', '.join(classes[k] for k in missing)} absent from training; "
                          "expected every test class among the training windows (choose other test subjects)")
    if not len(train_classes) or (~is_test).sum() == 0 or is_test.sum() == 0:
        raise HarvitError(f"{name}: the test split leaves an empty train or test set")
