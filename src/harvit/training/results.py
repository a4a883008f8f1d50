"""A finished run's results: :class:`TrainingResults`, what ``training_results.json`` holds, typed.

:func:`harvit.training.loop.test_best` builds one after scoring ``best.pt`` on the test split once;
:func:`harvit.training.train` returns it; the report (:mod:`harvit.reporting`) and ``harvit cv`` read it back
with :meth:`TrainingResults.load`. The JSON file stays flat and keeps its keys (``test_<metric>``,
``best_val_<metric>``, ``split``, ``refit``, ...), so files written by older versions read back: a key they
lack takes its field's default, and a registered metric they lack is computed from the per-window test
predictions where the file kept them (:meth:`TrainingResults.metric`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harvit.config import Config
from harvit.evaluation.metrics import METRICS, metric_value
from harvit.utils.atomic import write_json
from harvit.utils.errors import HarvitError

TRAINING_RESULTS_FILE = "training_results.json"
"""The results' file name in a run folder."""


@dataclass
class SplitCounts:
    """One split of the model selection.

    Attributes:
        windows: its number of windows.
        subjects: its subject ids.
        class_counts: windows per class, index = label.
    """

    windows: int = 0
    subjects: list[int] = field(default_factory=list)
    class_counts: list[int] = field(default_factory=list)


@dataclass
class RefitPhase:
    """The refit on training + validation windows.

    Attributes:
        windows: windows it trained on.
        epochs: epochs it ran (the selected epoch).
        steps_per_epoch: optimiser steps per epoch.
    """

    windows: int
    epochs: int
    steps_per_epoch: int


@dataclass
class TrainingResults:
    """Everything a finished run reports. Scores are fractions in [0, 1]; times are seconds.

    Attributes:
        test: metric key (:data:`harvit.evaluation.metrics.METRICS`) -> value on test (file keys ``test_<key>``).
        best_val: metric key -> value on validation at the selected epoch, or None (``best_val_<key>``).
        best_val_acc: the selected epoch's validation accuracy (what selection maximised).
        best_epoch: the selected epoch (1-based; the refit's epochs).
        epochs_run: epochs the selection ran (early stopping may stop it short).
        test_loss: mean cross-entropy per test window.
        test_view_accuracy: accuracy per view image on test.
        per_class_accuracy: class name -> recall on test.
        per_class: class name -> precision, recall, f1, support on test.
        confusion_matrix: [K][K] test counts, rows true, columns predicted.
        test_per_subject: :func:`harvit.evaluation.metrics.per_subject_metrics` on test, or None.
        classes: class names, index = label.
        dataset: the data set's name.
        dataset_notes: warnings from loading the data.
        steps_per_epoch: optimiser steps per selection epoch.
        refit: the refit phase, or None with ``--no-refit``.
        test_model: one line naming the model tested.
        total_time_s: wall time of the run: data, training, test.
        train_time_s: time in training epochs, selection and refit.
        feature_cache_s: time computing the frozen encoder's features.
        samples_per_s: view images trained per second of training.
        params_total: parameters of the model.
        params_trainable: parameters the optimiser updates.
        device: the torch device (``cuda:0``, ``cpu``, ...).
        world_size: processes that trained (1 without DDP).
        device_name: the GPU's name, or ``cpu``.
        split: ``train`` / ``val`` / ``test`` of the model selection.
        val_choice: how validation was chosen (subjects, windows, share), or None.
        events: what happened on the way (out-of-memory retries, ...), in order.
        config: the run's settings.
        test_y_true: int [N] true label per test window, in the data set's order.
        test_y_pred: int [N] predicted label per test window.
    """

    test: dict[str, float] = field(default_factory=dict)
    best_val: dict[str, float | None] = field(default_factory=dict)
    best_val_acc: float = 0.0
    best_epoch: int = 0
    epochs_run: int = 0
    test_loss: float = 0.0
    test_view_accuracy: float = 0.0
    per_class_accuracy: dict[str, float] = field(default_factory=dict)
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion_matrix: list[list[int]] = field(default_factory=list)
    test_per_subject: dict[str, Any] | None = None
    classes: list[str] = field(default_factory=list)
    dataset: str = ""
    dataset_notes: list[str] = field(default_factory=list)
    steps_per_epoch: int | None = None
    refit: RefitPhase | None = None
    test_model: str = ""
    total_time_s: float = 0.0
    train_time_s: float = 0.0
    feature_cache_s: float = 0.0
    samples_per_s: float = 0.0
    params_total: int = 0
    params_trainable: int = 0
    device: str = ""
    world_size: int = 1
    device_name: str = ""
    split: dict[str, SplitCounts] = field(default_factory=dict)
    val_choice: dict[str, Any] | None = None
    events: list[str] = field(default_factory=list)
    config: Config = field(default_factory=Config)
    test_y_true: list[int] | None = None
    test_y_pred: list[int] | None = None

    # ---- reading --------------------------------------------------------------------------------
    @property
    def test_windows(self) -> int | None:
        """The number of test windows the run was scored on (None when not recorded)."""
        recorded = self.split.get("test")
        return (recorded.windows if recorded else 0) or len(self.test_y_true or []) or None

    def metric(self, name: str, phase: str = "test") -> float | None:
        """A registered metric on ``test`` or at the selected epoch on ``val``: as recorded, else (test, a file
        written before the metric was registered) computed from the per-window test predictions, else None."""
        record = self.test if phase == "test" else self.best_val
        y, pred = (self.test_y_true, self.test_y_pred) if phase == "test" else (None, None)
        return metric_value(record, METRICS.get(name), "", y, pred, len(self.classes) or None)

    # ---- the JSON file ----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The flat ``training_results.json`` object (``test_<metric>``, ``best_val_<metric>``, ...)."""
        out: dict[str, Any] = {f"test_{k}": v for k, v in self.test.items()}
        for f in dataclasses.fields(self):
            if f.name in ("test", "best_val"):
                continue
            value = getattr(self, f.name)
            if f.name == "best_val_acc":
                out.update({f"best_val_{k}": v for k, v in self.best_val.items()})
            if isinstance(value, Config):
                value = value.to_dict()
            elif f.name == "split":
                value = {k: dataclasses.asdict(v) for k, v in value.items()}
            elif dataclasses.is_dataclass(value):
                value = dataclasses.asdict(value)
            out[f.name] = value
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any], source: str = TRAINING_RESULTS_FILE) -> TrainingResults:
        """Read a ``training_results.json`` object; keys it lacks take their defaults, keys it has that this
        version does not know are ignored. A value of the wrong kind raises :class:`HarvitError` naming it."""
        if not isinstance(d, dict):
            raise HarvitError(f"{source}: expected a JSON object, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)} - {"test", "best_val"}
        kwargs: dict[str, Any] = {k: v for k, v in d.items() if k in names}
        metric_keys = [k for k in METRICS if f"test_{k}" in d] + [
            k[len("test_"):] for k in d if k.startswith("test_") and k[len("test_"):] not in METRICS
            and isinstance(d[k], (int, float)) and not isinstance(d[k], bool) and k not in names]
        kwargs["test"] = {k: float(d[f"test_{k}"]) for k in metric_keys if d[f"test_{k}"] is not None}
        kwargs["best_val"] = {k[len("best_val_"):]: v for k, v in d.items()
                              if k.startswith("best_val_") and k != "best_val_acc"}
        try:
            kwargs["config"] = saved_config(d.get("config") or {}, f"{source} config")
            if isinstance(kwargs.get("refit"), dict):
                kwargs["refit"] = RefitPhase(**kwargs["refit"])
            kwargs["split"] = {k: SplitCounts(**v) for k, v in (d.get("split") or {}).items()}
        except TypeError as e:
            raise HarvitError(f"{source}: {e}") from None
        return cls(**kwargs)

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_json` to ``path`` atomically."""
        write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> TrainingResults:
        """Read a run's results file; a missing or unreadable one raises one :class:`HarvitError` naming it."""
        path = Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise HarvitError(f"{path} not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise HarvitError(f"{path}: not readable JSON ({e})") from None
        return cls.from_json(d, source=str(path))


def saved_config(d: dict[str, Any], source: str = "config") -> Config:
    """A run's saved settings as a :class:`Config`: settings it lacks, or holds as null where this version takes
    no null, take their defaults; settings this version no longer has (an older run's) are left out; any
    other value of the wrong type raises :class:`HarvitError`."""
    if not isinstance(d, dict):
        raise HarvitError(f"{source}: expected a JSON object of settings, got {type(d).__name__}")
    nullable = {f.name: "None" in str(f.type) for f in dataclasses.fields(Config)}
    return Config.from_dict({k: v for k, v in d.items() if k in nullable and (v is not None or nullable[k])},
                            source=source)
