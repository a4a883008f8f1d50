"""Classical baselines: what the ViT has to beat.

:func:`~harvit.features.statistics.window_statistics_array` turns windows [N, C, T] into hand-made
statistics [N, F];
:func:`run_baseline` fits a logistic regression (standardised features) and gradient-boosted
trees (scikit-learn's ``HistGradientBoostingClassifier``) on them, and MiniRocket (aeon's
reference implementation of random convolutional kernels on the raw windows, with the
``RidgeClassifierCV`` its authors use, on standardised features) beside them, all on the training
subjects minus the validation subjects (the same hold-out as training), and scores validation
and test. MiniRocket is an optional extra (``pip install harvit[minirocket]``); without aeon it is
skipped with one line.

Baselines depend only on the windows and the split: their results (with every window's
prediction) are cached under ``cache_dir()/baselines/``, keyed by a checksum of the windows, the
split's subjects, the seed and :data:`BASELINE_VERSION`, so a run's report does not refit them.

Measured on hapt6 with the data set's own training windows (stride 64; seed 42, val fraction 0.2,
one thread; 2026-11): logistic regression 95.5% test (0.3 s fit), boosted trees 94.9% (~10-15 s
fit); kurtosis and autocorrelation add ~0.8 points to the 252 features without them. The ``cpu``
preset's denser training windows (``--train-stride 32``) give logistic regression 95.8%: pass the
run's settings (``harvit baseline --run RUN`` or ``--preset``) to compare like with like.
MiniRocket on the ``cpu`` preset's windows (hapt6, seed 42, ``--train-stride 32``, 11435 training
windows): 97.0% test, macro-F1 97.2, about 12 CPU minutes on one thread (mostly the ridge's
leave-one-out search); docs/ACCURACY.md.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression, RidgeClassifierCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import harvit.data
from harvit.config import Config
from harvit.data import cache_dir, train_val_split
from harvit.evaluation.metrics import classification_metrics, per_subject_metrics
from harvit.features.statistics import window_statistics_array
from harvit.utils.atomic import write_json
from harvit.utils.errors import HarvitError
from harvit.utils.logging import log

if TYPE_CHECKING:
    from harvit.data import Dataset, Windows

BASELINE_VERSION = 3
"""Bump when the features, models or saved fields change: cached ``baseline.json`` files are refitted.
Version 2 keeps each model's test predictions (for the report's paired test); 3 adds MiniRocket and
per-subject results."""
#: Names of the models :func:`run_baseline` fits, and how reports call them.
MODEL_NAMES = {"logreg": "logistic-regression", "gbt": "gradient-boosted trees", "minirocket": "MiniRocket"}
MINIROCKET_KERNELS = 10_000
"""MiniRocket's default number of features (84 kernels x dilations x biases)."""
RIDGE_ALPHAS = np.logspace(-3, 3, 10)
"""The ridge penalties MiniRocket's authors search (leave-one-out cross-validation)."""


def make_models(seed: int) -> dict[str, Any]:
    """The baseline estimators on window statistics: ``logreg`` (StandardScaler + LogisticRegression) and ``gbt``."""
    return {
        "logreg": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed)),
        "gbt": HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, max_leaf_nodes=31,
                                              early_stopping=False, random_state=seed),
    }


def load_minirocket() -> type | None:
    """aeon's ``MiniRocket`` transform class, or None when aeon is not installed (an optional extra).

    Imported on first use: aeon (numba) takes seconds to import, and most harvit commands never need it.
    """
    try:
        module = importlib.import_module("aeon.transformations.collection.convolution_based")
    except ImportError:
        return None
    return getattr(module, "MiniRocket", None)


def windows_checksum(*windows: Windows) -> str:
    """sha256 (first 24 hex digits) of the windows' signals, labels and subjects, in order."""
    h = hashlib.sha256()
    for w in windows:
        for a in (w.x, w.y, w.subject):
            h.update(str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(json.dumps([list(w.channels), list(w.classes), float(w.rate_hz)]).encode())
    return h.hexdigest()[:24]


def baseline_cache_path(ds: Dataset, train_w: Windows, val_w: Windows, seed: int, models: tuple[str, ...]) -> Path:
    """Where the baseline results of these windows and this split are cached (``cache_dir()/baselines``)."""
    key = hashlib.sha256(json.dumps({
        "windows": windows_checksum(ds.train, ds.test), "train_subjects": train_w.subjects(),
        "val_subjects": val_w.subjects(), "seed": seed, "version": BASELINE_VERSION, "models": list(models),
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
                 minirocket: bool = True, use_cache: bool = True) -> dict[str, Any]:
    """Fit and score the baselines on a data set (or read them from the baseline cache).

    Args:
        dataset: data set name (recorded; loaded unless ``windows`` is given).
        data_dir: data folder (default ``$HARVIT_DATA_DIR``).
        seed, val_fraction: the subject hold-out, as in training (:func:`harvit.data.train_val_split`);
            ``seed`` also seeds the models (MiniRocket's kernels).
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
        minirocket: also fit MiniRocket (skipped with one line when aeon is not installed).
        use_cache: read and write the baseline cache (``cache_dir()/baselines``).

    Returns:
        dict: dataset, seed, val_fraction, n_features, feature_time_s, classes, split (windows and
        subjects of train/val/test), models {logreg, gbt, minirocket: {name, val_accuracy,
        test_accuracy, test_macro_f1, per_class_accuracy, confusion_matrix, per_subject, fit_time_s,
        val_pred, test_pred}}, best (key of the model with the best test accuracy), skipped (model ->
        why), cache_file, total_time_s.
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
    rocket_cls = load_minirocket() if minirocket else None
    skipped: dict[str, str] = {}
    if minirocket and rocket_cls is None:
        skipped["minirocket"] = "aeon is not installed (pip install 'harvit[minirocket]')"
        log("baseline: MiniRocket skipped: aeon is not installed (pip install 'harvit[minirocket]')")
    wanted = ("logreg", "gbt") + (("minirocket",) if rocket_cls is not None else ())
    cache_path = baseline_cache_path(ds, train_w, val_w, seed, wanted)
    cached = _read_cached(cache_path) if use_cache else None
    if cached is not None:
        result = {**cached, "dataset": dataset, "train_stride": train_stride, "cache_file": str(cache_path),
                  "cached": True, "skipped": skipped}
        if json_path:
            write_json(json_path, result)
        return result
    classes = list(ds.train.classes)
    t_feat = time.perf_counter()
    feats = {k: window_statistics_array(w.x, w.channels) for k, w in splits.items()}
    feature_time = time.perf_counter() - t_feat
    with threadpool_limits(limits=threads):
        models = fit_models(feats, splits, classes, seed)
        if rocket_cls is not None:
            models["minirocket"] = fit_minirocket(rocket_cls, splits, classes, seed)
    best = max(models, key=lambda k: models[k]["test_accuracy"])
    result = {
        "version": BASELINE_VERSION,
        "dataset": dataset,
        "seed": seed,
        "val_fraction": val_fraction,
        "val_subjects": val_subjects,
        "train_stride": train_stride,
        "n_features": int(feats["train"].shape[1]),
        "feature_time_s": round(feature_time, 3),
        "threads": threads,
        "classes": classes,
        "split": {k: {"windows": len(w), "subjects": w.subjects()} for k, w in splits.items()},
        "test_y_true": [int(v) for v in splits["test"].y],
        "models": models,
        "best": best,
        "skipped": skipped,
        "cache_file": str(cache_path) if use_cache else None,
        "cached": False,
        "total_time_s": round(time.perf_counter() - t0, 3),
    }
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
    test = splits["test"]
    m = classification_metrics(test.y, test_pred, classes)
    return {
        "name": name,
        "val_accuracy": float(np.mean(val_pred == splits["val"].y)),
        "test_accuracy": m["accuracy"],
        "test_macro_f1": m["macro_f1"],
        "per_class_accuracy": m["per_class_accuracy"],
        "confusion_matrix": m["confusion_matrix"],
        "per_subject": per_subject_metrics(test.y, test_pred, test.subject, classes),
        "fit_time_s": round(fit_time, 3),
        "predict_time_s": round(predict_time, 4),
        "val_pred": [int(v) for v in val_pred],
        "test_pred": [int(v) for v in test_pred],
    }


def fit_models(feats: dict[str, np.ndarray], splits: dict[str, Windows], classes: list[str], seed: int
               ) -> dict[str, dict[str, Any]]:
    """Fit every model of :func:`make_models` on ``feats["train"]``; score val and test."""
    models: dict[str, Any] = {}
    for key, est in make_models(seed).items():
        t = time.perf_counter()
        est.fit(feats["train"], splits["train"].y)
        fit_time = time.perf_counter() - t
        val_pred = est.predict(feats["val"])
        t = time.perf_counter()
        test_pred = est.predict(feats["test"])
        models[key] = score_model(MODEL_NAMES[key], val_pred, test_pred, splits, classes, fit_time,
                                  time.perf_counter() - t)
    return models


def fit_minirocket(rocket_cls: type, splits: dict[str, Windows], classes: list[str], seed: int,
                   n_kernels: int | None = None) -> dict[str, Any]:
    """MiniRocket features of the raw windows [N, C, T] (fitted on the training windows), then
    StandardScaler + ``RidgeClassifierCV(alphas=logspace(-3, 3, 10))``; fit time covers both."""
    t, cpu = time.perf_counter(), time.process_time()
    transform = rocket_cls(n_kernels=n_kernels or MINIROCKET_KERNELS, n_jobs=1, random_state=seed)
    f_train = transform.fit_transform(splits["train"].x)
    clf = make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=RIDGE_ALPHAS))
    clf.fit(f_train, splits["train"].y)
    fit_time, fit_cpu = time.perf_counter() - t, time.process_time() - cpu
    val_pred = clf.predict(transform.transform(splits["val"].x))
    t = time.perf_counter()
    test_pred = clf.predict(transform.transform(splits["test"].x))
    entry = score_model(MODEL_NAMES["minirocket"], val_pred, test_pred, splits, classes, fit_time,
                        time.perf_counter() - t)
    entry["n_features"] = int(f_train.shape[1])
    entry["alpha"] = float(clf[-1].alpha_)
    entry["fit_cpu_s"] = round(fit_cpu, 3)  # CPU seconds of this process: the wall time on a busy machine is more
    return entry


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
    for key, why in result.get("skipped", {}).items():
        lines.append(f"{MODEL_NAMES.get(key, key)}: skipped ({why})")
    if result.get("cached"):
        lines.append(f"read from the baseline cache: {result.get('cache_file')}")
    lines.append(f"total {result['total_time_s']:.1f}s")
    return "\n".join(lines)
