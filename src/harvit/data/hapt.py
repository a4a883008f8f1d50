"""HAPT (UCI dataset 341): UCI-HAR-style windows rebuilt from the raw 50 Hz recordings.

Input, in ``<data_dir>/hapt/``: ``HAPT_Data_Set_RawData_and_labels.zip`` (top folder
``HAPT Data Set/``), the official HAPT zip, or the unpacked ``HAPT Data Set/`` folder. Read:

- ``RawData/acc_expXX_userYY.txt`` (g) and ``RawData/gyro_expXX_userYY.txt`` (rad/s): 3 columns, 50 Hz;
- ``RawData/labels.txt``: rows ``exp user activity start end`` (1-based inclusive sample indices);
- ``activity_labels.txt``: ``id NAME`` rows, ids 1..12.

Each recording is filtered whole (:func:`harvit.data.signals.preprocess_inertial`), then cut into
windows of 128 samples with stride 64 that start at a labelled segment's first sample and lie
wholly inside it. This reproduces the official HAPT window counts (train 7767, test 3162).
``hapt12`` keeps all 12 activities; ``hapt6`` the 6 basic ones (labels 1..6).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from harvit.data.archive import Source, open_source
from harvit.data.cache import cache_key, cached_dataset
from harvit.data.catalog import register_dataset
from harvit.data.download import fetch_official
from harvit.data.segments import clear_of, gather_windows, segment_window_starts
from harvit.data.signals import (
    CHANNELS,
    DEFAULT_PREPROCESSING,
    Preprocessing,
    apply_nan_policy,
    check_nan_policy,
    parse_numeric_text,
    preprocess_inertial,
)
from harvit.data.windows import Dataset, Windows
from harvit.utils.errors import HarvitError

HAPT_URL = (
    "https://archive.ics.uci.edu/static/public/341/"
    "smartphone+based+recognition+of+human+activities+and+postural+transitions.zip"
)
SUBDIR = "hapt"
RAW_ZIP = "HAPT_Data_Set_RawData_and_labels.zip"
OFFICIAL_ZIP = "smartphone+based+recognition+of+human+activities+and+postural+transitions.zip"
FOLDER = "HAPT Data Set"
MARKER = "RawData/labels.txt"
ACTIVITY_LABELS = "activity_labels.txt"
MANIFEST = "hapt_sha256.tsv"
RATE_HZ = 50.0
TEST_SUBJECTS = frozenset({2, 4, 9, 10, 12, 13, 18, 20, 24})
N_BASIC = 6


def _cached_hapt(name: str, data_dir: Path, nan_policy: str, params: Preprocessing, use_cache: bool,
                 build: Callable[[Path], Dataset]) -> Dataset:
    """A HAPT data set through the prepared-windows cache: ``build(path of the HAPT source)`` on a miss."""
    check_nan_policy(nan_policy)
    path = locate_hapt(Path(data_dir))
    with open_source(path, MARKER) as src:
        fingerprint = src.fingerprint([*src.names("RawData"), ACTIVITY_LABELS])
    key = cache_key(
        dataset=name, source=fingerprint, params=params.as_dict(), nan_policy=nan_policy, rate_hz=RATE_HZ
    )
    detail = f"{params.window} samples at stride {params.stride}"
    ds = cached_dataset(name, key, lambda: build(path), use_cache, detail)
    for w in (ds.train, ds.test):
        w.meta["cache_key"] = key
    return ds


@register_dataset("HAPT raw recordings, UCI HAR preprocessing, 6 basic activities", n_classes=N_BASIC)
def hapt6(data_dir: Path, nan_policy: str = "error", params: Preprocessing = DEFAULT_PREPROCESSING,
          use_cache: bool = True) -> Dataset:
    """The 6 basic HAPT activities (the windows of :func:`hapt12` with labels 1..6), through the cache.

    Returns:
        Dataset with x float32 [N, 9, 128], y in 0..5, test = subjects :data:`TEST_SUBJECTS`.
    """
    return _cached_hapt(hapt6.__name__, data_dir, nan_policy, params, use_cache,
                        lambda path: basic_activities(hapt12(data_dir, nan_policy, params, use_cache), hapt6.__name__))


@register_dataset("HAPT raw recordings, UCI HAR preprocessing, 6 activities + 6 postural transitions",
                  n_classes=12)
def hapt12(data_dir: Path, nan_policy: str = "error", params: Preprocessing = DEFAULT_PREPROCESSING,
           use_cache: bool = True) -> Dataset:
    """All 12 HAPT activities from ``data_dir`` (downloading if allowed), through the cache.

    Returns:
        Dataset with x float32 [N, 9, 128] in :data:`CHANNELS` order, y in 0..11,
        test = subjects :data:`TEST_SUBJECTS`.
    """
    return _cached_hapt(hapt12.__name__, data_dir, nan_policy, params, use_cache,
                        lambda path: build_hapt(path, nan_policy, params))


def locate_hapt(data_dir: Path, allow_download: bool = True) -> Path:
    """The HAPT folder or zip in ``data_dir/hapt/``; if none, download the official zip there."""
    folder = data_dir / SUBDIR
    for candidate in (folder / FOLDER, folder / RAW_ZIP, folder / OFFICIAL_ZIP):
        if candidate.exists():
            return candidate
    if (folder / MARKER).is_file():
        return folder
    others = sorted(p for p in folder.glob("*.zip") if not p.name.startswith(".")) if folder.is_dir() else []
    if others:
        return others[0]
    missing = (
        f"HAPT data not found: put {RAW_ZIP} or the official HAPT zip ({HAPT_URL}) in {folder}/, "
        f"or set HARVIT_DATA_DIR to a folder holding hapt/"
    )
    if not allow_download:
        raise HarvitError(missing)
    return fetch_official(HAPT_URL, folder / OFFICIAL_ZIP, MARKER, MANIFEST, None, missing)


def build_hapt(
    path: Path, nan_policy: str = "error", params: Preprocessing = DEFAULT_PREPROCESSING
) -> Dataset:
    """Prepare all 12 HAPT activities from a folder or zip (no cache): the ``hapt12`` data set."""
    parts: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {"train": [], "test": []}
    dropped = {"train": 0, "test": 0}
    with open_source(path, MARKER) as src:
        classes = read_activity_labels(src)
        segments = read_segments(src, len(classes))
        for exp, user in _experiments(segments):
            sig, bad = read_experiment(src, exp, user, nan_policy, params)
            rows = segments[segments[:, 0] == exp]
            x, y, n_dropped = segment_windows(sig, bad, rows, params, src.where(MARKER))
            split = "test" if user in TEST_SUBJECTS else "train"
            parts[split].append((x, y, np.full(len(y), user, dtype=np.int64)))
            dropped[split] += n_dropped
    splits = {}
    for split, chunks in parts.items():
        meta = {
            "dataset": "hapt12",
            "split": split,
            "source": str(path),
            "preprocessing": params.as_dict(),
            "stride": params.stride,
            "nan_policy": nan_policy,
            "dropped_windows": dropped[split],
        }
        splits[split] = Windows(*_concat(chunks, params.window), list(CHANNELS), classes, RATE_HZ, meta)
    return Dataset("hapt12", splits["train"], splits["test"])


def basic_activities(ds: Dataset, name: str) -> Dataset:
    """The data set ``name`` from ``hapt12``: only the windows of the 6 basic activities (labels 1..6 -> y 0..5)."""
    out = []
    for w in (ds.train, ds.test):
        sub = w.subset(w.y < N_BASIC)
        sub.classes = list(w.classes[:N_BASIC])
        sub.meta["dataset"] = name
        out.append(sub)
    return Dataset(name, out[0], out[1])


def read_activity_labels(src: Source) -> list[str]:
    """Class names from ``activity_labels.txt`` (``id NAME`` rows; ids must be 1..K), index = id - 1."""
    where = src.where(ACTIVITY_LABELS)
    names: dict[int, str] = {}
    text = src.read(ACTIVITY_LABELS).decode("utf-8", errors="replace")
    for i, line in enumerate(text.splitlines(), start=1):
        parts = line.split(maxsplit=1)
        if not parts:
            continue
        if len(parts) != 2 or not parts[0].isdigit():
            raise HarvitError(f"{where} line {i}: found {line.strip()[:60]!r}, expected 'id NAME'")
        names[int(parts[0])] = parts[1].strip()
    if sorted(names) != list(range(1, len(names) + 1)) or not names:
        raise HarvitError(f"{where}: activity ids are {sorted(names)}; expected 1..K without gaps")
    return [names[i] for i in range(1, len(names) + 1)]


def read_segments(src: Source, n_classes: int) -> np.ndarray:
    """Labelled segments from ``RawData/labels.txt``.

    Returns:
        int64 [S, 6]: exp, user, activity id (1..n_classes), start, end (1-based inclusive), line number.
    """
    where = src.where(MARKER)
    data = src.read(MARKER)
    table = parse_numeric_text(data, where, ncols=5)
    lines = _data_line_numbers(data)
    fractional = (table != np.round(table)).any(axis=1)
    if fractional.any():
        line = lines[int(np.argmax(fractional))]
        raise HarvitError(
            f"{where} line {line}: found non-integer values; expected 'exp user activity start end'"
        )
    seg = np.column_stack([table.astype(np.int64), lines])
    for exp, user, act, start, end, line in seg:
        if not 1 <= act <= n_classes:
            raise HarvitError(
                f"{where} line {line}: activity id {act} is not in {ACTIVITY_LABELS} (ids 1..{n_classes})"
            )
        if start < 1 or end < start:
            raise HarvitError(
                f"{where} line {line} (exp {exp}, user {user}): segment {start}..{end}; "
                "expected 1 <= start <= end"
            )
    return seg


def read_experiment(
    src: Source, exp: int, user: int, nan_policy: str = "error", params: Preprocessing = DEFAULT_PREPROCESSING
) -> tuple[np.ndarray, np.ndarray]:
    """Read and filter one experiment's acc + gyro recordings.

    Returns:
        (float32 [9, T] preprocessed channels, bool [T] True where a raw sample was NaN/Inf when
        ``nan_policy`` is ``drop``, all False otherwise).
    """
    rels = [f"RawData/{sensor}_exp{exp:02d}_user{user:02d}.txt" for sensor in ("acc", "gyro")]
    raw = [parse_numeric_text(src.read(rel), src.where(rel), ncols=3) for rel in rels]
    if raw[0].shape[0] != raw[1].shape[0]:
        raise HarvitError(
            f"{src.where(rels[0])} has {raw[0].shape[0]} rows but {rels[1]} has {raw[1].shape[0]}; "
            "expected equal lengths (one row per 50 Hz sample)"
        )
    bad = np.zeros(raw[0].shape[0], dtype=bool)
    for k, rel in enumerate(rels):
        raw[k], dropped = apply_nan_policy(raw[k], src.where(rel), nan_policy)
        bad |= dropped
    return preprocess_inertial(raw[0], raw[1], RATE_HZ, params), bad


def segment_windows(
    sig: np.ndarray, bad: np.ndarray, segments: np.ndarray, params: Preprocessing, where: str
) -> tuple[np.ndarray, np.ndarray, int]:
    """Cut the windows of one experiment's labelled segments.

    Args:
        sig: float32 [C, T] preprocessed recording.
        bad: bool [T], True at raw NaN/Inf samples: windows touching one are dropped.
        segments: int64 [S, 6] rows of :func:`read_segments` for this experiment.
        params: window length and stride (samples).
        where: labels file name for error messages.

    Returns:
        (float32 [N, C, window], int64 [N] class index = activity id - 1, number of windows dropped).
    """
    n_samples = sig.shape[1]
    for exp, user, _act, start, end, line in segments:
        if end > n_samples:
            raise HarvitError(
                f"{where} line {line} (exp {exp}, user {user}): segment {start}..{end} ends beyond the "
                f"recording's {n_samples} samples"
            )
    spans = np.column_stack([segments[:, 3] - 1, segments[:, 4], segments[:, 2] - 1])  # 0-based [start, end)
    first, y = segment_window_starts(spans, params.window, params.stride)
    keep = clear_of(first, bad, params.window)
    first, y = first[keep], y[keep]
    return gather_windows(sig, first, params.window), y, int((~keep).sum())


def _experiments(segments: np.ndarray) -> list[tuple[int, int]]:
    """(exp, user) pairs in order of first appearance; an exp listed under two users is an error."""
    seen: dict[int, int] = {}
    for exp, user, *_rest, line in segments:
        if seen.setdefault(int(exp), int(user)) != user:
            raise HarvitError(
                f"{MARKER} line {line}: experiment {exp} is listed for users {seen[int(exp)]} and {user}; "
                "expected one user per experiment"
            )
    return list(seen.items())


def _data_line_numbers(data: bytes) -> np.ndarray:
    """1-based line numbers of the non-blank lines of a text file, int64 [rows]."""
    lines = data.decode("utf-8", errors="replace").splitlines()
    return np.array([i for i, line in enumerate(lines, start=1) if line.strip()], dtype=np.int64)


def _concat(chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]], window: int) -> tuple[np.ndarray, ...]:
    if not chunks:
        return (
            np.zeros((0, len(CHANNELS), window), np.float32),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
        )
    return tuple(np.concatenate([c[k] for c in chunks]) for k in range(3))
