"""Classical baselines: what harvit's model has to beat.

:func:`run_baseline` fits, on the same windows and subject split as training:

* logistic regression (standardised features) and gradient-boosted trees (scikit-learn's
  ``HistGradientBoostingClassifier``) on the window statistics of
  :func:`~harvit.features.statistics.window_statistics_array` ([N, C, T] -> [N, F]);
* the field's standard time-series classifiers on the raw windows
  (:mod:`harvit.evaluation.series_models`): MiniRocket and MultiRocket-Hydra with the fast ridge of
  :mod:`harvit.evaluation.ridge`, and QUANT with extremely randomised trees. They need aeon (an
  optional extra, ``pip install harvit[minirocket]``); without it they are skipped with one line.

The protocol, the same for every model and the same as harvit's model: fit on the training
subjects minus the validation subjects, score the validation windows (the ridge penalty is chosen
there, and the strongest baseline is the one with the best **validation** accuracy: the test split
chooses nothing); then, with ``refit`` (the default), fit again on training + validation windows and
score the test windows once.

Results (with every window's prediction) are cached under ``cache_dir()/baselines/``, keyed by a
checksum of the windows, the split's subjects, the seed, the models, ``refit`` and
:data:`BASELINE_VERSION`, so a run's report does not refit them.

Measured on hapt6 (the ``cpu`` preset's windows, ``--train-stride 32``: 11435 training windows, seed
42, one thread): see docs/ACCURACY.md for each model's accuracy and CPU seconds. MiniRocket with
scikit-learn's ``RidgeClassifierCV`` (leave-one-out search) took about 12 CPU minutes there; with the
validation-chosen ridge, 107 CPU s (transform 17, ridge 90 with the refit), 97.33% test. All five
models: 482 CPU s.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import harvit.data
from harvit.config import Config
from harvit.data import cache_dir, train_val_split
from harvit.evaluation import series_models
from harvit.evaluation.metrics import classification_metrics, per_subject_metrics
from harvit.features.statistics import window_statistics_array
from harvit.utils.atomic import write_json
from harvit.utils.errors import HarvitError
from harvit.utils.logging import log

if TYPE_CHECKING:
    from harvit.data import Dataset, Windows

BASELINE_VERSION = 4
"""Bump when the features, models or saved fields change: cached ``baseline.json`` files are refitted.
Version 2 keeps each model's test predictions (for the report's paired test); 3 adds MiniRocket and
per-subject results; 4: the ridge penalty chosen on validation, MultiRocket-Hydra and QUANT, the refit
on training + validation windows, balanced accuracy, the strongest model chosen by validation accuracy."""
#: Names of the models :func:`run_baseline` fits, and how reports call them.
MODEL_NAMES = {"logreg": "logistic-regression", "gbt": "gradient-boosted trees", **series_models.NAMES}
STATISTICS_MODELS = ("logreg", "gbt")
"""The models on window statistics (scikit-learn only: always fitted)."""
SERIES_MODELS = tuple(series_models.SERIES_MODELS)
"""The models on the raw windows (aeon's transforms: fitted when aeon is installed)."""
TIE_ORDER = (*SERIES_MODELS, *STATISTICS_MODELS)
"""Which of the models level on validation accuracy counts as the strongest: the field's standard
time-series classifiers first (small validation sets often score several models 100%)."""


def strongest(models: dict[str, dict[str, Any]]) -> str:
    """Key of the strongest model: the best validation accuracy; ties by :data:`TIE_ORDER`."""
    order = [k for k in TIE_ORDER if k in models] + [k for k in models if k not in TIE_ORDER]
    return max(order, key=lambda k: models[k].get("val_accuracy", 0.0))  # max keeps the first of equals


def make_models(seed: int) -> dict[str, Any]:
    """The baseline estimators on window statistics: ``logreg`` (StandardScaler + LogisticRegression) and ``gbt``."""
    return {
        "logreg": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed)),
        "gbt": HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, max_leaf_nodes=31,
                                              early_stopping=False, random_state=seed),
    }


def load_aeon() -> Any | None:
    """aeon's transforms (see :func:`harvit.evaluation.series_models.load_aeon`), or None without aeon."""
    return series_models.load_aeon()


def windows_checksum(*windows: Windows) -> str:
    """sha256 (first 24 hex digits) of the windows' signals, labels and subjects, in order."""
    h = hashlib.sha256()
    for w in windows:
        for a in (w.x, w.y, w.subject):
            h.update(str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(json.dumps([list(w.channels), list(w.classes), float(w.rate_hz)]).encode())
    return h.hexdigest()[:24]


def baseline_cache_path(ds: Dataset, train_w: Windows, val_w: Windows, seed: int, models: tuple[str, ...],
                        refit: bool = True) -> Path:
    """Where the baseline results of these windows and this split are cached (``cache_dir()/baselines``)."""
    key = hashlib.sha256(json.dumps({
        "windows": windows_checksum(ds.train, ds.test), "train_subjects": train_w.subjects(),
        "val_subjects": val_w.subjects(), "seed": seed, "version": BASELINE_VERSION, "models": list(models),
        "refit": refit,
    }, sort_keys=True).encode()).hexdigest()[:24]
    return cache_dir() / "baselines" / f"{ds.name}-{key}.json"


def _read_cached(path: Path) -> dict[str, Any] | None:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return saved if isinstance(saved, dict) and saved.get("version") == BASELINE_VERSION else None


def run_baseline(dataset: str = Config.dataset, data_dir: str | None = None, seed: int = 42,
                 val_fraction: float = 0.2, json_path: str | Path | None = None,
                 windows: Dataset | None = None, threads: int | None = 1,
                 train_stride: int | None = None, nan_policy: str = "error",
                 options: harvit.data.OwnOptions | None = None, val_subjects: list[int] | None = None,
                 minirocket: bool = True, use_cache: bool = True, refit: bool = True,
                 models: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Fit and score the baselines on a data set (or read them from the baseline cache).

    Args:
        dataset: data set name (recorded; loaded unless ``windows`` is given).
        data_dir: data folder (default ``$HARVIT_DATA_DIR``).
        seed, val_fraction: the subject hold-out, as in training (:func:`harvit.data.train_val_split`);
            ``seed`` also seeds the models (the random kernels).
        val_subjects: explicit validation subjects (a cross-validation fold), overriding the fraction.
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
        minirocket: also fit the models on the raw windows (MiniRocket, MultiRocket-Hydra, QUANT;
            skipped with one line when aeon is not installed).
        use_cache: read and write the baseline cache (``cache_dir()/baselines``).
        refit: after scoring validation, fit every model again on training + validation windows for
            the test predictions (as harvit's model does by default); False: test with the training-only fit.
        models: the keys to fit (default: all of :data:`MODEL_NAMES`, the raw-window ones only with
            ``minirocket`` and aeon).

    Returns:
        dict: dataset, seed, val_fraction, refit, n_features, feature_time_s, classes, split (windows and
        subjects of train/val/test), models {key: {name, val_accuracy, val_balanced_accuracy,
        test_accuracy, test_macro_f1, test_balanced_accuracy, per_class_accuracy, confusion_matrix,
        per_subject, fit_time_s, fit_cpu_s, val_pred, test_pred, ...}}, best (key of the model with the
        best validation accuracy; ties: :data:`TIE_ORDER`), best_by, skipped
        (model -> why), cache_file, total_time_s.
    """
    t0 = time.perf_counter()
    settings = {"dataset": dataset, "data_dir": data_dir, "nan_policy": nan_policy, "train_stride": train_stride or 0,
                **(options or harvit.data.OwnOptions()).as_dict()}
    ds = windows if windows is not None else harvit.data.load_run_dataset(settings)
    train_w, val_w = train_val_split(ds.train, val_fraction, seed, val_subjects)
    splits = {"train": train_w, "val": val_w, "test": ds.test}
    for k, w in splits.items():
        if len(w) == 0:
            raise HarvitError(f"baseline: the {k} split of {dataset} holds no windows")
    wanted = tuple(models or MODEL_NAMES)
    unknown = [m for m in wanted if m not in MODEL_NAMES]
    if unknown:
        raise HarvitError(f"baseline: unknown model {unknown[0]!r}; choose from {', '.join(MODEL_NAMES)}")
    skipped: dict[str, str] = {}
    series = [m for m in wanted if m in SERIES_MODELS] if minirocket else []
    aeon = load_aeon() if series else None
    if series and aeon is None:
        why = "aeon is not installed (pip install 'harvit[minirocket]')"
        skipped.update({m: why for m in series})
        log(f"baseline: {', '.join(MODEL_NAMES[m] for m in series)} skipped: {why}")
        series = []
    wanted = tuple(m for m in wanted if m in STATISTICS_MODELS or m in series)
    cache_path = baseline_cache_path(ds, train_w, val_w, seed, wanted, refit)
    cached = _read_cached(cache_path) if use_cache else None
    if cached is not None:
        result = {**cached, "dataset": dataset, "train_stride": train_stride, "cache_file": str(cache_path),
                  "cached": True, "skipped": skipped}
        if json_path:
            write_json(json_path, result)
        return result
    classes = list(ds.train.classes)
    log(f"baseline: {', '.join(MODEL_NAMES[m] for m in wanted)} on {len(train_w)} training windows x "
        f"{train_w.x.shape[1]} channels (validation {len(val_w)}, test {len(ds.test)})"
        + ("; refitted on training + validation windows" if refit else ""))
    t_feat = time.perf_counter()
    feats = {k: window_statistics_array(w.x, w.channels) for k, w in splits.items()}
    feature_time = time.perf_counter() - t_feat
    fitted: dict[str, dict[str, Any]] = {}
    with threadpool_limits(limits=threads):
        fitted.update(fit_models(feats, splits, classes, seed, refit, [m for m in wanted if m in STATISTICS_MODELS]))
        xs = {k: w.x for k, w in splits.items()}
        ys = {k: np.asarray(w.y) for k, w in splits.items()}
        for key in series:
            t, cpu = time.perf_counter(), time.process_time()
            part = series_models.SERIES_MODELS[key](aeon, xs, ys, len(classes), seed, refit)
            entry = score_model(MODEL_NAMES[key], part["val_pred"], part["test_pred"], splits, classes,
                                time.perf_counter() - t, 0.0)
            entry.update(part["extra"])
            entry["fit_cpu_s"] = round(time.process_time() - cpu, 3)
            fitted[key] = entry
    best = strongest(fitted)
    result = {
        "version": BASELINE_VERSION,
        "dataset": dataset,
        "seed": seed,
        "val_fraction": val_fraction,
        "val_subjects": val_subjects,
        "train_stride": train_stride,
        "refit": refit,
        "n_features": int(feats["train"].shape[1]),
        "feature_time_s": round(feature_time, 3),
        "threads": threads,
        "classes": classes,
        "split": {k: {"windows": len(w), "subjects": w.subjects()} for k, w in splits.items()},
        "test_y_true": [int(v) for v in splits["test"].y],
        "models": fitted,
        "best": best,
        "best_by": "validation accuracy",
        "skipped": skipped,
        "cache_file": str(cache_path) if use_cache else None,
        "cached": False,
        "total_time_s": round(time.perf_counter() - t0, 3),
    }
    log(f"baseline: done in {result['total_time_s']:.1f} s; strongest on validation: {MODEL_NAMES[best]} "
        f"({100 * fitted[best]['val_accuracy']:.2f}%)")
    if use_cache:
        try:
            write_json(cache_path, result)
        except HarvitError as e:
            log(f"baseline: could not cache the results ({e})")
    if json_path:
        write_json(json_path, result)
    return result


def score_model(name: str, val_pred: np.ndarray, test_pred: np.ndarray, splits: dict[str, Windows],
                classes: list[str], fit_time: float, predict_time: float) -> dict[str, Any]:
    """One model's entry of :func:`run_baseline`'s ``models``: metrics and every window's prediction."""
    test, val = splits["test"], splits["val"]
    val_pred, test_pred = np.asarray(val_pred), np.asarray(test_pred)
    m = classification_metrics(test.y, test_pred, classes)
    return {
        "name": name,
        "val_accuracy": float(np.mean(val_pred == val.y)),
        "val_balanced_accuracy": float(balanced_accuracy_score(val.y, val_pred)),
        "test_accuracy": m["accuracy"],
        "test_macro_f1": m["macro_f1"],
        "test_balanced_accuracy": float(balanced_accuracy_score(test.y, test_pred)),
        "per_class_accuracy": m["per_class_accuracy"],
        "confusion_matrix": m["confusion_matrix"],
        "per_subject": per_subject_metrics(test.y, test_pred, test.subject, classes),
        "fit_time_s": round(fit_time, 3),
        "predict_time_s": round(predict_time, 4),
        "val_pred": [int(v) for v in val_pred],
        "test_pred": [int(v) for v in test_pred],
    }


def fit_models(feats: dict[str, np.ndarray], splits: dict[str, Windows], classes: list[str], seed: int,
               refit: bool = True, keys: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Fit the models of :func:`make_models` (``keys``: all) on ``feats["train"]`` [N, F] and score
    validation; with ``refit``, fit again on training + validation features for the test predictions."""
    models: dict[str, Any] = {}
    y_tv = np.concatenate([splits["train"].y, splits["val"].y])
    for key, est in make_models(seed).items():
        if keys is not None and key not in keys:
            continue
        t, cpu = time.perf_counter(), time.process_time()
        est.fit(feats["train"], splits["train"].y)
        val_pred = est.predict(feats["val"])
        if refit:
            est = make_models(seed)[key].fit(np.vstack([feats["train"], feats["val"]]), y_tv)
        fit_time, fit_cpu = time.perf_counter() - t, time.process_time() - cpu
        t = time.perf_counter()
        test_pred = est.predict(feats["test"])
        models[key] = score_model(MODEL_NAMES[key], val_pred, test_pred, splits, classes, fit_time,
                                  time.perf_counter() - t)
        models[key].update(fit_cpu_s=round(fit_cpu, 3), refit_on_train_val=refit)
        log(f"baseline: {MODEL_NAMES[key]} on {feats['train'].shape[1]} window statistics: "
            f"{fit_time:.1f} s ({fit_cpu:.1f} CPU s), validation {100 * models[key]['val_accuracy']:.2f}%")
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
        f"window statistics: {result['n_features']} per window ({result['feature_time_s']:.1f}s)",
        "test: " + ("each model refitted on training + validation windows" if result.get("refit")
                    else "each model as fitted on the training windows"),
        "",
        f"{'model':<24}  {'val acc':>7}  {'test acc':>8}  {'macro-F1':>8}  {'bal acc':>7}  {'fit time':>8}  {'CPU':>7}",
    ]
    for key, m in result["models"].items():
        mark = "  <- strongest on validation" if key == result["best"] else ""
        lines.append(f"{m['name']:<24}  {m['val_accuracy']:>7.4f}  {m['test_accuracy']:>8.4f}  "
                     f"{m['test_macro_f1']:>8.4f}  {m.get('test_balanced_accuracy', float('nan')):>7.4f}  "
                     f"{m['fit_time_s']:>7.1f}s  {m.get('fit_cpu_s', float('nan')):>6.1f}s{mark}")
    for key, why in result.get("skipped", {}).items():
        lines.append(f"{MODEL_NAMES.get(key, key)}: skipped ({why})")
    if result.get("cached"):
        lines.append(f"read from the baseline cache: {result.get('cache_file')}")
    lines.append(f"total {result['total_time_s']:.1f}s")
    return "\n".join(lines)
