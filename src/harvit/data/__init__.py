"""Data sets as :class:`Windows`: loading, preprocessing, caching, subject splits, downloads.

Every data set (HAPT rebuilt from raw recordings, UCI HAR's official windows) ends as a
:class:`Dataset` of train/test :class:`Windows` with x float32 [N, 9, 128] (acc in g, gyro in
rad/s) at 50 Hz. Nothing downstream reads data files directly.
"""

from harvit.data.cache import cache_dir, resolve_data_dir
from harvit.data.download import download, safe_extract
from harvit.data.registry import DATASETS, dataset_info, dataset_names, load_dataset
from harvit.data.signals import CHANNELS, Preprocessing, preprocess_inertial, sliding_windows
from harvit.data.splits import train_val_split
from harvit.data.windows import Dataset, Windows

__all__ = [
    "CHANNELS",
    "DATASETS",
    "Dataset",
    "Preprocessing",
    "Windows",
    "cache_dir",
    "dataset_info",
    "dataset_names",
    "download",
    "load_dataset",
    "preprocess_inertial",
    "resolve_data_dir",
    "safe_extract",
    "sliding_windows",
    "train_val_split",
]
