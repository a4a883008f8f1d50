"""Classical baselines on window statistics: what the ViT has to beat.

:func:`~harvit.features.statistics.window_statistics_array` turns windows [N, C, T] into hand-made
statistics [N, F];
:func:`run_baseline` fits a logistic regression (standardised features) and gradient-boosted
trees (scikit-learn's ``HistGradientBoostingClassifier``) on the training subjects minus the
validation subjects (the same seeded hold-out as training) and scores validation and test.

The statistics are listed in :mod:`harvit.features.statistics` (300 on the 9 HAR channels).

Measured on hapt6 with the data set's own training windows (stride 64; seed 42, val fraction 0.2,
one thread; 2026-11): logistic regression 95.5% test (0.3 s fit), boosted trees 94.9% (~10-15 s
fit); kurtosis and autocorrelation add ~0.8 points to the 252 features without them. The ``cpu``
preset's denser training windows (``--train-stride 32``) give logistic regression 95.8%: pass the
run's settings (``harvit baseline --run RUN`` or ``--preset``) to compare like with like.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import harvit.data
from harvit.data import train_val_split
from harvit.evaluation.metrics import classification_metrics
from harvit.features.statistics import window_statistics_array
from harvit.utils.atomic import write_json
from harvit.utils.errors import HarvitError

if TYPE_CHECKING:
    from harvit.data import Dataset, Windows

BASELINE_VERSION = 2
"""Bump when the features, models or saved fields change: cached ``baseline.json`` files are refitted.
Version 2 keeps each model's test predictions (for the report's paired test)."""
#: Names of the models :func:`run_baseline` fits, and how reports call them.
MODEL_NAMES = {"logreg": "logistic-regression", "gbt": "gradient-boosted trees"}

def make_models(seed: int) -> dict[str, Any]:
    """The baseline estimators: ``logreg`` (StandardScaler + LogisticRegression) and ``gbt``."""
    return {
        "logreg": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed)),
        "gbt": HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, max_leaf_nodes=31,
                                              early_stopping=False, random_state=seed),
    }


def run_baseline(dataset: str = "hapt6", data_dir: str | None = None, seed: int = 42,
                 val_fraction: float = 0.2, json_path: str | Path | None = None,
                 windows: Dataset | None = None, threads: int | None = 1,
                 train_stride: int | None = None, nan_policy: str = "error",
                 options: harvit.data.OwnOptions | None = None) -> dict[str, Any]:
    """Fit and score the baselines on a data set.

    Args:
        dataset: data set name (recorded; loaded unless ``windows`` is given).
        data_dir: data folder (default ``$HARVIT_DATA_DIR``).
        seed, val_fraction: the subject hold-out, as in training (:func:`harvit.data.train_val_split`).
        json_path: write the result here as JSON.
        windows: an already loaded :class:`~harvit.data.Dataset` (train + test windows) to use.
        train_stride: training-window stride in samples (None: the data set's own), as the run's
            ``--train-stride``; recorded, and used to load the data when ``windows`` is not given.
        nan_policy: the run's ``--nan-policy``, used to load the data when ``windows`` is not given.
        options: own-data settings when ``dataset`` is a path (columns, rate, preprocessing, test split).
        threads: OpenMP/BLAS threads while fitting (None: the libraries' default). One thread is
            the default because it is both fast and robust: on a busy 2-core machine the
            multi-threaded fits spin-wait (measured on hapt6: logistic regression 0.3 s with 1
            thread vs 7 s with 2; boosted trees 9 s vs 72 s).

    Returns:
        dict: dataset, seed, val_fraction, n_features, feature_time_s, classes, split (windows and
        subjects of train/val/test), test_y_true (the test windows' labels, in order), models {logreg,
        gbt: {name, val_accuracy, test_accuracy, test_macro_f1, per_class_accuracy, confusion_matrix,
        fit_time_s, test_pred (one predicted class index per test window, in order)}}, best (key of the
        model with the best test accuracy), total_time_s.
    """
    t0 = time.perf_counter()
    ds = windows if windows is not None else harvit.data.load_dataset(dataset, data_dir, nan_policy,
                                                                      train_stride=train_stride, options=options)
    train_w, val_w = train_val_split(ds.train, val_fraction, seed)
    splits = {"train": train_w, "val": val_w, "test": ds.test}
    for k, w in splits.items():
        if len(w) == 0:
            raise HarvitError(f"baseline: the {k} split of {dataset} holds no windows")
    classes = list(ds.train.classes)
    t_feat = time.perf_counter()
    feats = {k: window_statistics_array(w.x, w.channels) for k, w in splits.items()}
    feature_time = time.perf_counter() - t_feat
    with threadpool_limits(limits=threads):
        models = fit_models(feats, splits, classes, seed)
    best = max(models, key=lambda k: models[k]["test_accuracy"])
    result = {
        "version": BASELINE_VERSION,
        "dataset": dataset,
        "seed": seed,
        "val_fraction": val_fraction,
        "train_stride": train_stride,
        "n_features": int(feats["train"].shape[1]),
        "feature_time_s": round(feature_time, 3),
        "threads": threads,
        "classes": classes,
        "split": {k: {"windows": len(w), "subjects": w.subjects()} for k, w in splits.items()},
        "test_y_true": [int(v) for v in splits["test"].y],
        "models": models,
        "best": best,
        "total_time_s": round(time.perf_counter() - t0, 3),
    }
    if json_path:
        write_json(json_path, result)
    return result


def fit_models(feats: dict[str, np.ndarray], splits: dict[str, Windows], classes: list[str], seed: int
               ) -> dict[str, dict[str, Any]]:
    """Fit every model of :func:`make_models` on ``feats["train"]``; score val and test."""
    models: dict[str, Any] = {}
    for key, est in make_models(seed).items():
        t = time.perf_counter()
        est.fit(feats["train"], splits["train"].y)
        fit_time = time.perf_counter() - t
        val_pred = est.predict(feats["val"])
        test_y = splits["test"].y
        t = time.perf_counter()
        test_pred = est.predict(feats["test"])
        predict_time = time.perf_counter() - t
        m = classification_metrics(test_y, test_pred, classes)
        models[key] = {
            "name": MODEL_NAMES[key],
            "val_accuracy": float(np.mean(val_pred == splits["val"].y)),
            "test_accuracy": m["accuracy"],
            "test_macro_f1": m["macro_f1"],
            "per_class_accuracy": m["per_class_accuracy"],
            "confusion_matrix": m["confusion_matrix"],
            "fit_time_s": round(fit_time, 3),
            "predict_time_s": round(predict_time, 4),
            "test_pred": [int(v) for v in test_pred],
        }
    return models


def format_baseline(result: dict[str, Any]) -> str:
    """The ``harvit baseline`` printout: one row per model."""
    sp = result["split"]
    lines = [
        f"{result['dataset']}: train {sp['train']['windows']} / val {sp['val']['windows']} / test "
        f"{sp['test']['windows']} windows (subjects {len(sp['train']['subjects'])} / "
        f"{len(sp['val']['subjects'])} / {len(sp['test']['subjects'])}; val seed {result['seed']}, "
        f"fraction {result['val_fraction']})",
        "training windows: " + (f"every {result['train_stride']} samples (--train-stride)"
                                if result.get("train_stride") else "the data set's own stride")
        + "; test windows: the data set's own stride",
        f"features: {result['n_features']} per window ({result['feature_time_s']:.1f}s)",
        "",
        f"{'model':<24}  {'val acc':>7}  {'test acc':>8}  {'macro-F1':>8}  {'fit time':>8}",
    ]
    for key, m in result["models"].items():
        mark = "  <- best" if key == result["best"] else ""
        lines.append(f"{m['name']:<24}  {m['val_accuracy']:>7.4f}  {m['test_accuracy']:>8.4f}  "
                     f"{m['test_macro_f1']:>8.4f}  {m['fit_time_s']:>7.1f}s{mark}")
    lines.append(f"total {result['total_time_s']:.1f}s")
    return "\n".join(lines)
