"""Data sets as :class:`Windows`: loading, preprocessing, caching, subject splits, downloads.

Every data set (HAPT rebuilt from raw recordings, UCI HAR's official windows, the user's own
tables, ``.npz`` and ``.ts`` files) ends as a :class:`Dataset` of train/test :class:`Windows` with
x float32 [N, C, T]; the built-in ones have C = 9 (acc in g, gyro in rad/s), T = 128 at 50 Hz.
Nothing downstream reads data files directly.
"""

from harvit.data.cache import cache_dir, resolve_data_dir
from harvit.data.download import download, safe_extract
from harvit.data.options import OwnOptions
from harvit.data.own import load_own
from harvit.data.registry import (
    DATASETS,
    check_dataset,
    dataset_info,
    dataset_names,
    get_spec,
    is_builtin,
    load_dataset,
    load_run_dataset,
    windowing,
)
from harvit.data.signals import CHANNELS, Preprocessing, preprocess_inertial, sliding_windows
from harvit.data.splits import train_val_split
from harvit.data.windows import NO_SUBJECT, Dataset, Windows

__all__ = [
    "CHANNELS",
    "DATASETS",
    "NO_SUBJECT",
    "Dataset",
    "OwnOptions",
    "Preprocessing",
    "Windows",
    "cache_dir",
    "check_dataset",
    "dataset_info",
    "dataset_names",
    "get_spec",
    "download",
    "is_builtin",
    "load_dataset",
    "load_run_dataset",
    "load_own",
    "preprocess_inertial",
    "resolve_data_dir",
    "safe_extract",
    "sliding_windows",
    "train_val_split",
    "windowing",
]
