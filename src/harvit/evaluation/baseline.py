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

Each model's accuracy and CPU seconds on the project's data sets, and the machines they were measured on,
are in docs/results.md and docs/benchmarks.md.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

import harvit.data
from harvit.config import BASELINE_SETS, Config
from harvit.data import cache_dir, train_val_split
from harvit.evaluation import series_models, statistics_models  # noqa: F401  (they register the baselines)
from harvit.evaluation.baseline_registry import BASELINES, BaselineInputs, display_name, ordered, tie_order
from harvit.evaluation.metrics import (
    HEADLINE,
    METRICS,
    classification_metrics,
    metric_record,
    metric_value,
    per_subject_metrics,
)
from harvit.utils.atomic import write_json
from harvit.utils.errors import HarvitError
from harvit.utils.logging import log

if TYPE_CHECKING:
    from harvit.data import Dataset, Windows

BASELINE_VERSION = 7
"""Bump when the features, models or saved fields change: cached ``baseline.json`` files are refitted.
Version 2 keeps each model's test predictions (for the report's paired test); 3 adds MiniRocket and
per-subject results; 4: the ridge penalty chosen on validation, MultiRocket-Hydra and QUANT, the refit
on training + validation windows, balanced accuracy, the strongest model chosen by validation accuracy;
5: every registered metric on validation and test, the baseline set (fitted and left-out models); 6:
MiniRocket on harvit's transform with the draws of the model's convolution branch; 7: the ridge's penalty
walk stops at the first worse penalty, its factorisations are LAPACK's, logistic regression's refit starts
warm."""
AUTO_ALL_MAX_SAMPLES = 2_000_000
"""``--baseline-set auto`` fits every registered baseline when the training windows hold at most this many
samples (windows x channels x length: UEA-size sets fit in seconds), else the ``fast`` tier only (on hapt6,
8.8 M samples at the cpu preset's stride, the full tier costs ~6x the model's training)."""


def strongest(models: dict[str, dict[str, Any]]) -> str:
    """Key of the strongest model: the best validation accuracy; ties by
    :func:`harvit.evaluation.baseline_registry.tie_order` (the time-series classifiers first)."""
    ties = tie_order()
    order = [k for k in ties if k in models] + [k for k in models if k not in ties]
    return max(order, key=lambda k: models[k].get(f"val_{HEADLINE}", 0.0))  # max keeps the first of equals


def choose_baselines(baseline_set: str, train_samples: int) -> tuple[list[str], dict[str, str]]:
    """The registered baselines ``--baseline-set`` fits, and those it leaves out with why.

    Args:
        baseline_set: ``all``, ``fast`` (the fast tier) or ``auto`` (all when ``train_samples`` <=
            :data:`AUTO_ALL_MAX_SAMPLES`, else fast).
        train_samples: the training windows' samples, windows x channels x length.

    Returns:
        (keys to fit in table order, {left-out key: why}).
    """
    if baseline_set not in BASELINE_SETS:
        raise HarvitError(f"--baseline-set: got {baseline_set!r}, expected one of {', '.join(BASELINE_SETS)}")
    fast_only = baseline_set == "fast" or (baseline_set == "auto" and train_samples > AUTO_ALL_MAX_SAMPLES)
    keys = [k for k in ordered() if not fast_only or BASELINES.get(k).tier == "fast"]
    why = ("--baseline-set fast" if baseline_set == "fast" else
           f"--baseline-set auto: {train_samples:,} training samples > {AUTO_ALL_MAX_SAMPLES:,}")
    return keys, {k: f"{BASELINES.get(k).tier} tier ({why})" for k in ordered() if k not in keys}


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
                 models: tuple[str, ...] | None = None, baseline_set: str = "all") -> dict[str, Any]:
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
            the default because it is both fast and robust: on a busy machine the multi-threaded
            fits spin-wait (docs/benchmarks.md).
        minirocket: also fit the time-series classifiers (MiniRocket; MultiRocket-Hydra and QUANT,
            which need aeon: skipped with one line when it is not installed).
        use_cache: read and write the baseline cache (``cache_dir()/baselines``); a cached result of every
            registered baseline is read in place of a smaller set.
        refit: after scoring validation, fit every model again on training + validation windows for
            the test predictions (as harvit's model does by default); False: test with the training-only fit.
        models: the keys to fit (default: those of ``baseline_set``); each a registered baseline
            (:data:`~harvit.evaluation.baseline_registry.BASELINES`).
        baseline_set: ``all`` | ``fast`` | ``auto`` (:func:`choose_baselines`), when ``models`` is not given.

    Returns:
        dict: dataset, seed, val_fraction, refit, baseline_set, n_features, feature_time_s, classes, split
        (windows and subjects of train/val/test), models {key: {name, val_<metric>, test_<metric> of every
        registered metric, per_class_accuracy, confusion_matrix, per_subject, fit_time_s, fit_cpu_s,
        val_pred, test_pred, ...}}, best (key of the model with the best validation accuracy; ties:
        :func:`~harvit.evaluation.baseline_registry.tie_order`), best_by, skipped (model -> why: aeon
        missing), left_out (model -> why: its cost tier), cache_file, total_time_s.
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
    left_out: dict[str, str] = {}
    if models:
        wanted = [BASELINES.get(m).name for m in models]  # an unknown key: one error naming the choices
    else:
        wanted, left_out = choose_baselines(baseline_set, int(ds.train.x.size))
    skipped: dict[str, str] = {}
    if not minirocket:
        skipped.update({m: "--no-minirocket" for m in wanted if BASELINES.get(m).reads == "series"})
    needs_aeon = [m for m in wanted if BASELINES.get(m).needs == "aeon" and m not in skipped]
    aeon = load_aeon() if needs_aeon else None
    if needs_aeon and aeon is None:
        why = "aeon is not installed (pip install 'harvit[minirocket]')"
        skipped.update({m: why for m in needs_aeon})
        log(f"baseline: {', '.join(display_name(m) for m in needs_aeon)} skipped: {why}")
    wanted = [m for m in wanted if m not in skipped]
    if not wanted:
        raise HarvitError("baseline: no baseline left to fit (" + "; ".join(f"{display_name(k)}: {v}" for k, v in
                                                                             {**left_out, **skipped}.items()) + ")")
    extra = {"dataset": dataset, "train_stride": train_stride, "skipped": skipped}
    cached = _cached(ds, train_w, val_w, seed, tuple(wanted), refit, use_cache, minirocket)
    if cached is not None:
        result = {**cached, **extra, "cached": True}
        result["left_out"] = {k: v for k, v in left_out.items() if k not in result["models"]}
        if json_path:
            write_json(json_path, result)
        return result
    cache_path = baseline_cache_path(ds, train_w, val_w, seed, tuple(wanted), refit)
    classes = list(ds.train.classes)
    log(f"baseline: {', '.join(display_name(m) for m in wanted)} on {len(train_w)} training windows x "
        f"{train_w.x.shape[1]} channels (validation {len(val_w)}, test {len(ds.test)})"
        + ("; refitted on training + validation windows" if refit else ""))
    inputs = BaselineInputs({k: w.x for k, w in splits.items()}, {k: np.asarray(w.y) for k, w in splits.items()},
                            list(train_w.channels), len(classes), seed, refit, aeon, torch.get_num_threads())
    feats = inputs.statistics()  # computed once: recorded, and shared by the baselines that read them
    fitted: dict[str, dict[str, Any]] = {}
    with threadpool_limits(limits=threads):
        for key in wanted:
            t, cpu = time.perf_counter(), time.process_time()
            out = BASELINES.get(key).fit(inputs)
            fit_time, fit_cpu = time.perf_counter() - t, time.process_time() - cpu
            fitted[key] = {**score_model(display_name(key), out.val_pred, out.test_pred, splits, classes, fit_time),
                           **out.extra, "fit_cpu_s": round(fit_cpu, 3)}
            log(f"baseline: {display_name(key)}: {fit_time:.1f} s ({fit_cpu:.1f} CPU s), validation "
                f"{100 * fitted[key][f'val_{HEADLINE}']:.2f}%")
    best = strongest(fitted)
    result = {
        "version": BASELINE_VERSION,
        "dataset": dataset,
        "seed": seed,
        "val_fraction": val_fraction,
        "val_subjects": val_subjects,
        "train_stride": train_stride,
        "refit": refit,
        "baseline_set": "given" if models else baseline_set,
        "n_features": int(feats["train"].shape[1]),
        "feature_time_s": round(inputs.statistics_time_s, 3),
        "threads": threads,
        "classes": classes,
        "split": {k: {"windows": len(w), "subjects": w.subjects()} for k, w in splits.items()},
        "test_y_true": [int(v) for v in splits["test"].y],
        "models": fitted,
        "best": best,
        "best_by": "validation accuracy",
        "skipped": skipped,
        "left_out": left_out,
        "cache_file": str(cache_path) if use_cache else None,
        "cached": False,
        "total_time_s": round(time.perf_counter() - t0, 3),
    }
    log(f"baseline: done in {result['total_time_s']:.1f} s; strongest on validation: {display_name(best)} "
        f"({100 * fitted[best][f'val_{HEADLINE}']:.2f}%)")
    if use_cache:
        try:
            write_json(cache_path, result)
        except HarvitError as e:
            log(f"baseline: could not cache the results ({e})")
    if json_path:
        write_json(json_path, result)
    return result


def _cached(ds: Dataset, train_w: Windows, val_w: Windows, seed: int, wanted: tuple[str, ...], refit: bool,
            use_cache: bool, with_series: bool) -> dict[str, Any] | None:
    """A cached result of every registered baseline (a larger set, fitted by ``--baseline-set all``, with or
    without aeon's models), else of exactly ``wanted``, else None."""
    if not use_cache:
        return None
    every = [k for k in ordered() if with_series or BASELINES.get(k).reads != "series"]
    without_aeon = [k for k in every if BASELINES.get(k).needs is None]
    for keys in dict.fromkeys([tuple(every), tuple(without_aeon), wanted]):
        if set(wanted) <= set(keys):
            path = baseline_cache_path(ds, train_w, val_w, seed, keys, refit)
            cached = _read_cached(path)
            if cached is not None:
                return {**cached, "cache_file": str(path)}
    return None


def score_model(name: str, val_pred: np.ndarray, test_pred: np.ndarray, splits: dict[str, Windows],
                classes: list[str], fit_time: float) -> dict[str, Any]:
    """One model's entry of :func:`run_baseline`'s ``models``: every registered metric on validation and test,
    per-class and per-subject figures, and every window's prediction."""
    test, val = splits["test"], splits["val"]
    val_pred, test_pred = np.asarray(val_pred), np.asarray(test_pred)
    m = classification_metrics(test.y, test_pred, classes)
    return {
        "name": name,
        **metric_record(val.y, val_pred, len(classes), prefix="val_"),
        **metric_record(test.y, test_pred, len(classes), prefix="test_"),
        "per_class_accuracy": m["per_class_accuracy"],
        "confusion_matrix": m["confusion_matrix"],
        "per_subject": per_subject_metrics(test.y, test_pred, test.subject, classes),
        "fit_time_s": round(fit_time, 3),
        "val_pred": [int(v) for v in val_pred],
        "test_pred": [int(v) for v in test_pred],
    }


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
    ]
    shown = [m for m in METRICS.values()]
    widths = [max(8, len(m.display) + 5) for m in shown]
    lines.append(f"{'model':<24}  {'val ' + METRICS.get(HEADLINE).display:>{widths[0]}}"
                 + "".join(f"  {'test ' + m.display:>{w}}" for m, w in zip(shown, widths, strict=True))
                 + f"  {'fit time':>8}  {'CPU':>7}")
    y_true = result.get("test_y_true")
    k = len(result.get("classes") or [])
    for key, r in result["models"].items():
        mark = "  <- strongest on validation" if key == result["best"] else ""
        tests = [metric_value(r, m, "test_", y_true, r.get("test_pred"), k) for m in shown]
        lines.append(f"{r['name']:<24}  {r[f'val_{HEADLINE}']:>{widths[0]}.4f}"
                     + "".join(f"  {'-' if v is None else f'{v:.4f}':>{w}}" for v, w in zip(tests, widths, strict=True))
                     + f"  {r['fit_time_s']:>7.1f}s  {r.get('fit_cpu_s', float('nan')):>6.1f}s{mark}")
    for key, why in result.get("skipped", {}).items():
        lines.append(f"{display_name(key)}: skipped ({why})")
    left = result.get("left_out") or {}
    if left:
        lines.append(f"left out: {', '.join(f'{display_name(k)} ({v})' for k, v in left.items())}; "
                     "--baseline-set all fits them")
    if result.get("cached"):
        lines.append(f"read from the baseline cache: {result.get('cache_file')}")
    lines.append(f"total {result['total_time_s']:.1f}s")
    return "\n".join(lines)
