"""The registry of built-in data sets: each loader module registers its data sets here, once.

A built-in data set is a function ``load(data_dir, nan_policy, params, use_cache) -> Dataset``
decorated with :func:`register_dataset` in the module that owns it (:mod:`harvit.data.hapt`,
:mod:`harvit.data.uci_har`); its name is the function's name. :mod:`harvit.data.registry` loads by
name, ``harvit data info`` shows the description, ``harvit train --help`` lists the names,
:func:`harvit.data.windowing` tells :func:`harvit.config.resolve` whether a preset's training
stride applies, and the profiler reads ``n_classes``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harvit.data.signals import Preprocessing
from harvit.data.windows import Dataset
from harvit.utils.registry import Registry

#: ``load(data_dir, nan_policy, params, use_cache) -> Dataset``
Loader = Callable[[Path, str, Preprocessing, bool], Dataset]


@dataclass(frozen=True)
class DatasetSpec:
    """A built-in data set.

    Attributes:
        name: the ``--dataset`` value.
        description: one line for ``harvit data info`` and the docs.
        load: the loader; the train and test windows x float32 [N, C, T], y int64 [N] in 0..n_classes-1.
        n_classes: the number of classes (what the profiler builds a head for without loading the data).
        fixed_windows: the data set ships pre-cut windows: preprocessing parameters and ``--train-stride``
            do not apply (a preset's training stride is dropped for it).
    """

    name: str
    description: str
    load: Loader
    n_classes: int
    fixed_windows: bool = False


#: The built-in data sets, in registration order.
DATASETS: Registry[DatasetSpec] = Registry("data set", "--dataset")


def register_dataset(description: str, *, n_classes: int, fixed_windows: bool = False) -> Callable[[Loader], Loader]:
    """Decorator: register a loader as a built-in data set named after the function (timm's way)."""
    def add(load: Loader) -> Loader:
        DATASETS.add(DatasetSpec(load.__name__, description, load, n_classes, fixed_windows))
        return load

    return add
