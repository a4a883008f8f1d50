"""The baselines' registry: each baseline is ONE fit function and ONE registration.

:func:`register_baseline` names a baseline after its function (as timm's ``register_model``) and
records how reports call it, what it reads (the window statistics or the raw windows), what it needs
(``aeon``, an optional extra) and its cost tier (``fast`` or ``full``: ``--baseline-set`` picks the
tiers). :func:`harvit.evaluation.baseline.run_baseline` fits every registered baseline the same way:
fit on the training windows, predict the validation windows, with ``refit`` fit again on training +
validation windows and predict the test windows. ``harvit baseline --models``, the report's table,
its wording and its verdict read :data:`BASELINES`; nothing keeps a copy of the names.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harvit.features.statistics import window_statistics_array
from harvit.utils.registry import Registry

TIERS = ("fast", "full")
"""Cost tiers: ``fast`` baselines are fitted on every report; ``full`` ones when ``--baseline-set`` allows."""
READS = ("statistics", "series")
"""What a baseline reads: the window statistics ([N, F], computed once for all) or the raw windows [N, C, T]."""
NEEDS = ("aeon",)
"""The optional packages a baseline may need (``pip install 'harvit[minirocket]'``)."""


@dataclass
class BaselineInputs:
    """What a baseline's fit function gets: every split's windows and labels, and what is shared.

    Attributes:
        xs: split (``train``, ``val``, ``test``) -> windows float32 [N, C, T].
        ys: split -> labels int [N].
        channels: channel names (the window statistics use them).
        n_classes: the number of classes K.
        seed: seeds the models (random kernels, trees).
        refit: fit again on training + validation windows for the test predictions.
        aeon: aeon's transforms (:func:`harvit.evaluation.series_models.load_aeon`) when a baseline needs them.
        torch_threads: torch's threads for the large torch solves (the ridge), as the process had them
            before the fits were limited to ``threads`` OpenMP/BLAS threads (None: leave them).
    """

    xs: dict[str, np.ndarray]
    ys: dict[str, np.ndarray]
    channels: list[str]
    n_classes: int
    seed: int
    refit: bool = True
    aeon: Any | None = None
    torch_threads: int | None = None
    statistics_time_s: float = 0.0
    _statistics: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def statistics(self) -> dict[str, np.ndarray]:
        """Split -> window statistics float32 [N, F], computed once and shared by every baseline that reads them."""
        if self._statistics is None:
            t = time.perf_counter()
            self._statistics = {k: window_statistics_array(x, self.channels) for k, x in self.xs.items()}
            self.statistics_time_s = time.perf_counter() - t
        return self._statistics

    def y_train_val(self) -> np.ndarray:
        """Labels of training + validation windows, in that order (the refit's targets) [N_train + N_val]."""
        return np.concatenate([self.ys["train"], self.ys["val"]])


@dataclass(frozen=True)
class Fitted:
    """What a fit function returns: validation predictions (of the training-only fit) int [N_val], test
    predictions (of the refit when ``refit``) int [N_test], and extras for the record (sizes, penalties, CPU s)."""

    val_pred: np.ndarray
    test_pred: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)


FitFn = Callable[[BaselineInputs], Fitted]


@dataclass(frozen=True)
class BaselineSpec:
    """A registered baseline: its key (``name``), how reports call it, what it reads and needs, its cost tier."""

    name: str
    display: str
    fit: FitFn
    reads: str
    tier: str
    needs: str | None = None


#: The baselines: key -> :class:`BaselineSpec`, in registration order.
BASELINES: Registry[BaselineSpec] = Registry("model", "baseline")


def register_baseline(display: str, *, reads: str, tier: str, needs: str | None = None) -> Callable[[FitFn], FitFn]:
    """Decorator: register a baseline's fit function ``(BaselineInputs) -> Fitted`` under its function's name.

    Args:
        display: how reports call it (``"MiniRocket"``).
        reads: ``statistics`` or ``series`` (:data:`READS`).
        tier: ``fast`` or ``full`` (:data:`TIERS`): ``--baseline-set fast`` fits the fast ones only.
        needs: an optional package it needs (:data:`NEEDS`), or None; without it the baseline is skipped
            with one line.
    """
    for what, value, allowed in (("reads", reads, READS), ("tier", tier, TIERS), ("needs", needs, (None, *NEEDS))):
        if value not in allowed:
            raise ValueError(f"register_baseline: {what}={value!r}, expected one of {allowed}")

    def add(fn: FitFn) -> FitFn:
        BASELINES.add(BaselineSpec(fn.__name__, display, fn, reads, tier, needs))
        return fn

    return add


def display_name(key: str) -> str:
    """How reports call a baseline (its key when it is no longer registered, e.g. in an old cached result)."""
    return BASELINES.get(key).display if key in BASELINES else key


def ordered(keys: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """Registered keys (default: all) in the order of every table: those on window statistics, then those on
    the raw windows, each in registration order."""
    keys = BASELINES.names() if keys is None else [k for k in keys if k in BASELINES]
    return sorted(keys, key=lambda k: READS.index(BASELINES.get(k).reads))


def tie_order() -> list[str]:
    """Which of the baselines level on validation accuracy counts as the strongest: the field's standard
    time-series classifiers first (small validation sets often score several models 100%)."""
    return sorted(BASELINES.names(), key=lambda k: -READS.index(BASELINES.get(k).reads))
