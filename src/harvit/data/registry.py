"""Data sets by name: ``load_dataset`` and the ``harvit data info`` table."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import harvit.data.hapt  # noqa: F401 - registers hapt6 and hapt12
import harvit.data.uci_har  # noqa: F401 - registers uci_har
from harvit.config import Config, training_stride
from harvit.data.cache import resolve_data_dir
from harvit.data.catalog import DATASETS, DatasetSpec
from harvit.data.options import OwnOptions
from harvit.data.own import load_own, looks_like_path
from harvit.data.signals import DEFAULT_PREPROCESSING, Preprocessing, check_nan_policy
from harvit.data.windows import Dataset, Windows
from harvit.utils.errors import HarvitError

log = logging.getLogger(__name__)


def dataset_names() -> list[str]:
    """Names accepted by :func:`load_dataset`: the registered built-in data sets."""
    return DATASETS.names()


def is_builtin(name: str) -> bool:
    """Whether ``name`` is a built-in data set (else it is a path to the user's own data)."""
    return name in DATASETS


def check_dataset(name: str) -> str:
    """Validate a ``--dataset`` value: a built-in name or an existing path; else one error naming ``--dataset``."""
    if is_builtin(name):
        return name
    if isinstance(name, str) and name and looks_like_path(name) and Path(name).expanduser().exists():
        return name
    raise HarvitError(
        f"--dataset: {name!r} is neither a built-in data set ({DATASETS.listing()}) nor an existing file or folder"
    )


def get_spec(name: str) -> DatasetSpec:
    """The spec of ``name``; an unknown name raises :class:`HarvitError` listing the known ones."""
    return DATASETS.get(name)


def windowing(name: str) -> str:
    """How ``name`` comes (one of :data:`harvit.config.WINDOWINGS`): ``recordings`` (a built-in data set cut
    by its recipe), ``windows`` (fixed windows: a built-in one that ships them, an .npz, .ts files) or
    ``table`` (recordings of your own, and anything that is not yet a readable path: loading says why)."""
    if is_builtin(name):
        return "windows" if get_spec(name).fixed_windows else "recordings"
    path = Path(str(name)).expanduser()
    if path.name.lower().endswith((".npz", ".ts")) or (path.is_dir() and any(path.glob("*_TRAIN.ts"))):
        return "windows"
    return "table"


def load_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    nan_policy: str = "error",
    *,
    params: Preprocessing | None = None,
    use_cache: bool = True,
    train_stride: int | None = None,
    options: OwnOptions | None = None,
) -> Dataset:
    """Load a data set's train and test windows.

    Args:
        name: a built-in data set (:func:`dataset_names`), or a path to the user's own data (a table of
            recordings, an ``.npz`` of windows, or a ``.ts`` pair: :func:`harvit.data.own.load_own`).
        data_dir: folder holding ``hapt/`` and ``uci_har/`` (see :func:`resolve_data_dir`).
        nan_policy: NaN/Inf in signals: ``error`` raises, ``drop`` drops the windows holding
            them, ``interpolate`` fills them linearly.
        params: HAPT preprocessing (default: UCI HAR's recipe, 128-sample windows, stride 64).
        use_cache: read and write prepared windows under :func:`harvit.data.cache_dir`.
        train_stride: step between *training* window starts in samples (None: the recipe's own).
            Denser training windows give more (overlapping) examples; the test windows keep the
            recipe's stride, so test scores stay comparable. Only for data sets windowed from raw
            recordings (built-in data sets without ``fixed_windows``, tables). Tables may give
            ``options.train_overlap`` instead (a fraction of their window length).
        options: the own-data settings (:class:`OwnOptions`, e.g. ``OwnOptions.from_settings(cfg.to_dict())``);
            with a built-in name they must be the defaults.

    Returns:
        Dataset whose splits hold x float32 [N, C, T], y int64 [N], subject int64 [N]; for the built-in
        ones C = 9 (acc in g, gyro in rad/s), T = 128, 50 Hz, test = the data set's own test subjects.
    """
    check_nan_policy(nan_policy)
    options = options or OwnOptions()
    if not is_builtin(name):
        check_dataset(name)
        if train_stride is not None and train_stride < 1:
            raise HarvitError(f"--train-stride: got {train_stride}, expected >= 1 samples")
        train_overlap = options.train_overlap
        if train_overlap:
            if train_stride is not None:
                raise HarvitError(f"--train-stride {train_stride} and --train-overlap {train_overlap:g}: expected "
                                  "one of them")
            options = dataclasses.replace(options, train_overlap=0.0)  # the test windows' cache key stays the same
        ds = load_own(name, options, nan_policy, use_cache)
        if train_overlap:
            length = ds.train.length if len(ds.train) else ds.test.length
            train_stride = max(1, int(round(length * (1 - train_overlap))))
        if train_stride is None or train_stride == ds.train.meta.get("stride"):
            return ds
        if not ds.train.has_subjects:
            log.warning("--train-stride %d ignored: %s names no subjects, and denser training windows would "
                        "overlap the test windows", train_stride, ds.name)
            return ds
        dense = load_own(name, options, nan_policy, use_cache, stride=train_stride)
        return Dataset(ds.name, dense.train, ds.test, list(ds.notes))
    spec = get_spec(name)
    given = options.changed()
    if given:
        flags = ", ".join("--" + g.replace("_", "-") for g in given)
        raise HarvitError(f"{flags}: only for your own data (--dataset PATH); {name} is built in")
    params = params or DEFAULT_PREPROCESSING
    folder = resolve_data_dir(data_dir)
    if train_stride is not None and train_stride < 1:
        raise HarvitError(f"--train-stride: got {train_stride}, expected >= 1 samples")
    if spec.fixed_windows and params != DEFAULT_PREPROCESSING:
        raise HarvitError(f"{name}: windows come pre-cut and filtered; preprocessing parameters do not apply")
    if train_stride is not None and spec.fixed_windows:
        cut = ", ".join(s.name for s in DATASETS.values() if not s.fixed_windows)
        raise HarvitError(f"--train-stride: {name} ships fixed windows; only {cut} are windowed from raw recordings")
    ds = spec.load(folder, nan_policy, params, use_cache)
    if train_stride is None or train_stride == params.stride:
        return ds
    dense = spec.load(folder, nan_policy, dataclasses.replace(params, stride=train_stride), use_cache)
    return Dataset(ds.name, dense.train, ds.test, list(ds.notes))


def load_run_dataset(
    settings: Config | Mapping[str, Any],
    *,
    dataset: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    dense_train: bool = True,
    use_cache: bool = True,
) -> Dataset:
    """The data set a run's saved settings describe: what every command that reads a run loads.

    The one place that turns settings into :func:`load_dataset`'s arguments: the data set, its folder,
    the NaN policy, the training stride and the own-data options (:class:`OwnOptions`).

    Args:
        settings: a :class:`Config`, or a run's ``config.json`` as a dict (settings it lacks take their
            defaults, so an older run still loads).
        dataset: another data set to read the same way (``harvit evaluate --dataset``): the run's own-data
            options apply to it when it is a path; the run's training stride applies to the run's data set only.
        data_dir: the data folder (None: the run's ``data_dir``).
        dense_train: False loads the training windows at the data set's own stride (the test windows,
            which never depend on it, cost no second pass).
        use_cache: read and write prepared windows.

    Returns:
        The :class:`Dataset` (x float32 [N, C, T], y int64 [N], subject int64 [N] per split).
    """
    values = settings.to_dict() if isinstance(settings, Config) else {**Config().to_dict(), **settings}
    own_name = values["dataset"]
    name = dataset or own_name
    options = OwnOptions.from_settings(values) if name == own_name or not is_builtin(name) else None
    stride = training_stride(values) if dense_train and name == own_name else None
    folder = data_dir if data_dir is not None else values.get("data_dir")
    return load_dataset(name, folder, values.get("nan_policy") or "error", train_stride=stride, options=options,
                        use_cache=use_cache)


def dataset_info(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    options: OwnOptions | None = None,
    nan_policy: str = "error",
    train_stride: int | None = None,
) -> str:
    """A multi-line table for ``harvit data info``: windows per split and class, subjects, channels,
    window length and rate."""
    ds = load_dataset(name, data_dir, nan_policy, options=options, train_stride=train_stride)
    return format_info(ds, describe(name))


def describe(name: str) -> str:
    """One line on a data set: a built-in one's registered description, else ``your own data``."""
    return get_spec(name).description if is_builtin(name) else "your own data"


def format_info(ds: Dataset, description: str = "") -> str:
    """Render the :func:`dataset_info` table of a loaded :class:`Dataset`."""
    train, test = ds.train, ds.test
    ref = train if len(train) else test
    length, rate = ref.length, ref.rate_hz
    stride = ref.meta.get("stride")
    window = f"{length} samples = {length / rate:.2f} s at {rate:g} Hz"
    if stride:
        window += f", stride {stride}"
    lines = [
        f"dataset   {ds.name}" + (f"  ({description})" if description else ""),
        f"source    {ref.meta.get('source', '?')}",
        f"channels  {ref.n_channels}: {' '.join(ref.channels)}",
        f"window    {window}",
    ]
    if train.has_subjects or test.has_subjects:
        lines += [f"subjects  train {len(train.subjects())}: {_ids(train)}",
                  f"          test  {len(test.subjects())}: {_ids(test)}"]
    else:
        lines.append("subjects  none named")
    load = ref.meta.get("load_stats") or {}
    if load:
        units = ", ".join(load.get("time_units", []))
        lines.append(f"time      {units}; data's own rate {load.get('own_rate_hz')} Hz; "
                     f"{load.get('pieces')} recording pieces ({load.get('short_pieces')} shorter than a window, "
                     f"{load.get('gridded_pieces')} put on a regular grid, {load.get('resampled_pieces')} resampled)")
    if ref.meta.get("test_split"):
        lines.append(f"test      {ref.meta['test_split']}")
    lines += [f"note      {note}" for note in ds.notes]
    lines.append("")
    width = max([len("class"), len("total")] + [len(c) for c in ref.classes])
    lines.append(f"{'class':<{width}}  {'train':>7}  {'test':>7}")
    for name, a, b in zip(ref.classes, train.class_counts(), test.class_counts(), strict=True):
        lines.append(f"{name:<{width}}  {a:>7}  {b:>7}")
    lines.append(f"{'total':<{width}}  {len(train):>7}  {len(test):>7}")
    return "\n".join(lines)


def _ids(w: Windows) -> str:
    names = w.meta.get("subject_names") or {}
    return " ".join(names.get(str(s), str(s)) for s in w.subjects()) or "-"
