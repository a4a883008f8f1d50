"""Classical baselines on window statistics: what the ViT has to beat.

:func:`window_features` turns windows [N, C, T] into hand-made features [N, F] (vectorised numpy);
:func:`run_baseline` fits a logistic regression (standardised features) and gradient-boosted
trees (scikit-learn's ``HistGradientBoostingClassifier``) on the training subjects minus the
validation subjects (the same seeded hold-out as training) and scores validation and test.

Features of every signal (the C channels plus the magnitude of every x/y/z sensor):

* mean, std, min, max, percentiles 10/25/50/75/90, energy (mean square), mean absolute
  first difference (jerk), skewness, kurtosis, autocorrelation at lags 2, 8 and 16 samples;
* log band energies of the spectrum (6 bands, log-spaced up to Nyquist; at 50 Hz and 128
  samples the bins 0.4, 0.8-1.2, 1.6-3.1, 3.5-6.3, 6.6-12.5, 12.9-25 Hz), dominant frequency
  (fraction of Nyquist), spectral entropy;

plus, per x/y/z sensor, the correlations xy, xz, yz, and the gravity direction (the mean of
``total_acc`` normalised to unit length). On the 9-channel HAR windows that is 12 x 24 + 9 + 3 = 300.

Measured on hapt6 (seed 42, val fraction 0.2, one thread): logistic regression 95.5% test
(0.3 s fit), boosted trees 94.9% (~10-15 s fit); kurtosis and autocorrelation add ~0.8 points to
the 252 features without them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from harvit.atomic import write_json
from harvit.data.signals import CHANNELS
from harvit.errors import HarvitError
from harvit.evaluate import classification_metrics

if TYPE_CHECKING:
    from harvit.data import Dataset, Windows

BASELINE_VERSION = 1
"""Bump when the features or models change: cached ``baseline.json`` files are refitted."""
#: Names of the models :func:`run_baseline` fits, and how reports call them.
MODEL_NAMES = {"logreg": "logistic-regression", "gbt": "gradient-boosted trees"}
BAND_EDGES = (0.0, 1 / 64, 3 / 64, 8 / 64, 16 / 64, 32 / 64, 1.0)
"""Spectrum band edges as fractions of Nyquist; a band holds the bins with lo < f <= hi (no DC)."""
AUTOCORR_LAGS = (2, 8, 16)
"""Autocorrelation lags in samples (at 50 Hz: 40, 160, 320 ms)."""
_EPS = 1e-8


def _sensors(channels: list[str]) -> list[tuple[str, tuple[int, int, int]]]:
    """(prefix, (ix, iy, iz)) of every complete x/y/z sensor, in channel order."""
    from harvit.views import sensor_triples

    return [(channels[t[0]].rpartition("_")[0], t) for t in sensor_triples(channels)]


def signal_features(s: np.ndarray) -> np.ndarray:
    """Per-signal statistics.

    Args:
        s: float [N, S, T] signals.

    Returns:
        float32 [N, S, 24]: mean, std, min, max, p10, p25, p50, p75, p90, energy, jerk, skew,
        kurtosis, 3 autocorrelations, 6 log band energies, dominant frequency (fraction of
        Nyquist), spectral entropy.
    """
    s = s.astype(np.float64, copy=False)
    t = s.shape[-1]
    mean = s.mean(-1)
    std = s.std(-1)
    pct = np.percentile(s, [10, 25, 50, 75, 90], axis=-1)  # [5, N, S]
    energy = (s * s).mean(-1)
    jerk = np.abs(np.diff(s, axis=-1)).mean(-1) if t > 1 else np.zeros_like(mean)
    centred = s - mean[..., None]
    safe_std = np.where(std > _EPS, std, 1.0)
    skew = np.where(std > _EPS, (centred**3).mean(-1) / safe_std**3, 0.0)
    kurt = np.where(std > _EPS, (centred**4).mean(-1) / safe_std**4, 0.0)
    var = np.where(std > _EPS, safe_std**2, 1.0)
    autocorr = [np.where(std > _EPS, (centred[..., lag:] * centred[..., :-lag]).mean(-1) / var, 0.0)
                if lag < t else np.zeros_like(mean) for lag in AUTOCORR_LAGS]

    power = np.abs(np.fft.rfft(centred, axis=-1)) ** 2 / max(t, 1)  # [N, S, t//2+1]
    power = power[..., 1:]  # no DC (the mean is a feature already)
    n_bins = power.shape[-1]
    freq = np.arange(1, n_bins + 1) / max(n_bins, 1)  # fraction of Nyquist of each bin
    bands = [np.log1p(power[..., (freq > lo) & (freq <= hi)].sum(-1))
             for lo, hi in zip(BAND_EDGES[:-1], BAND_EDGES[1:], strict=True)]
    total = power.sum(-1)
    has_power = total > _EPS
    peak = power.argmax(-1) if n_bins else np.zeros(mean.shape, dtype=np.int64)
    dominant = np.where(has_power, (peak + 1) / max(n_bins, 1), 0.0)
    p = power / np.where(has_power, total, 1.0)[..., None]
    entropy = -(p * np.log(np.where(p > 0, p, 1.0))).sum(-1) / np.log(max(n_bins, 2))
    entropy = np.where(has_power, entropy, 0.0)
    feats = [mean, std, s.min(-1), s.max(-1), *pct, energy, jerk, skew, kurt, *autocorr, *bands, dominant,
             entropy]
    return np.stack(feats, axis=-1).astype(np.float32)


def _correlations(x: np.ndarray, triple: tuple[int, int, int]) -> np.ndarray:
    """Pearson correlations xy, xz, yz of one sensor: [N, 3] (0 where a signal is constant)."""
    s = x[:, list(triple)].astype(np.float64)
    c = s - s.mean(-1, keepdims=True)
    norm = np.sqrt((c * c).sum(-1))  # [N, 3]
    out = []
    for a, b in ((0, 1), (0, 2), (1, 2)):
        den = norm[:, a] * norm[:, b]
        out.append(np.where(den > _EPS, (c[:, a] * c[:, b]).sum(-1) / np.where(den > _EPS, den, 1.0), 0.0))
    return np.stack(out, axis=-1)


def window_features(x: np.ndarray, channels: list[str] | None = None) -> np.ndarray:
    """Hand-made features of windows (see the module docstring).

    Args:
        x: float [N, C, T] windows (acc in g, gyro in rad/s).
        channels: C channel names (``body_acc_x`` ...); sensors are the complete x/y/z triples.
            Default: the standard 9 HAR channels when C == 9, else unnamed (no sensor features).

    Returns:
        float32 [N, F], finite; F = 24 * (C + sensors) + 3 * sensors (+ 3 with ``total_acc``):
        300 for the 9 HAR channels.
    """
    x = np.asarray(x)
    if x.ndim != 3:
        raise HarvitError(f"window_features: expected windows [N, C, T], got shape {list(x.shape)}")
    if channels is None:
        channels = list(CHANNELS) if x.shape[1] == 9 else [f"ch{i}" for i in range(x.shape[1])]
    if len(channels) != x.shape[1]:
        raise HarvitError(f"window_features: {len(channels)} channel names for {x.shape[1]} channels")
    sensors = _sensors(list(channels))
    signals = [x.astype(np.float64)]
    for _, t in sensors:
        signals.append(np.sqrt((x[:, list(t)].astype(np.float64) ** 2).sum(1, keepdims=True)))
    all_signals = np.concatenate(signals, axis=1)  # [N, C + sensors, T]
    parts = [signal_features(all_signals).reshape(len(x), -1)]
    for _, t in sensors:
        parts.append(_correlations(x, t))
    for prefix, t in sensors:
        if "total" in prefix:
            g = x[:, list(t)].astype(np.float64).mean(-1)  # [N, 3]
            n = np.linalg.norm(g, axis=-1, keepdims=True)
            parts.append(np.where(n > _EPS, g / np.where(n > _EPS, n, 1.0), 0.0))
    out = np.concatenate(parts, axis=1).astype(np.float32)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def make_models(seed: int) -> dict[str, Any]:
    """The baseline estimators: ``logreg`` (StandardScaler + LogisticRegression) and ``gbt``."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "logreg": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed)),
        "gbt": HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, max_leaf_nodes=31,
                                              early_stopping=False, random_state=seed),
    }


def run_baseline(dataset: str = "hapt6", data_dir: str | None = None, seed: int = 42,
                 val_fraction: float = 0.2, json_path: str | Path | None = None,
                 windows: Dataset | None = None, threads: int | None = 1,
                 train_stride: int | None = None) -> dict[str, Any]:
    """Fit and score the baselines on a data set.

    Args:
        dataset: data set name (recorded; loaded unless ``windows`` is given).
        data_dir: data folder (default ``$HARVIT_DATA_DIR``).
        seed, val_fraction: the subject hold-out, as in training (:func:`harvit.data.train_val_split`).
        json_path: write the result here as JSON.
        windows: an already loaded :class:`~harvit.data.Dataset` (train + test windows) to use.
        train_stride: training-window stride in samples (None: the data set's own), as the run's
            ``--train-stride``; recorded, and used to load the data when ``windows`` is not given.
        threads: OpenMP/BLAS threads while fitting (None: the libraries' default). One thread is
            the default because it is both fast and robust: on a busy 2-core machine the
            multi-threaded fits spin-wait (measured on hapt6: logistic regression 0.3 s with 1
            thread vs 7 s with 2; boosted trees 9 s vs 72 s).

    Returns:
        dict: dataset, seed, val_fraction, n_features, feature_time_s, classes, split (windows and
        subjects of train/val/test), models {logreg, gbt: {name, val_accuracy, test_accuracy,
        test_macro_f1, per_class_accuracy, confusion_matrix, fit_time_s}}, best (key of the model with
        the best test accuracy), total_time_s.
    """
    from harvit.data import load_dataset, train_val_split

    t0 = time.perf_counter()
    ds = windows if windows is not None else load_dataset(dataset, data_dir, train_stride=train_stride)
    train_w, val_w = train_val_split(ds.train, val_fraction, seed)
    splits = {"train": train_w, "val": val_w, "test": ds.test}
    for k, w in splits.items():
        if len(w) == 0:
            raise HarvitError(f"baseline: the {k} split of {dataset} holds no windows")
    classes = list(ds.train.classes)
    t_feat = time.perf_counter()
    feats = {k: window_features(w.x, w.channels) for k, w in splits.items()}
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
