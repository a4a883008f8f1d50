"""The field's standard time-series classifiers as baselines: aeon's transforms, fitted the project's way.

Each is registered (:func:`~harvit.evaluation.baseline_registry.register_baseline`) with its cost tier:

* ``minirocket`` (fast): MiniRocket's transform (9996 features) as harvit computes it
  (:class:`~harvit.features.rocket.RocketFeatures`: aeon's algorithm, checked against aeon's transform
  in the tests), then the fast ridge of :mod:`harvit.evaluation.ridge` (StandardScaler + penalty chosen
  on the validation subjects) on its exact counts. Its random draws (channel subsets, bias windows) are
  those of harvit's convolution branch with the same seed, so on a run's windows it reads the counts the
  model stored (:func:`~harvit.features.store.rocket_counts`) and costs only its ridge. aeon's own
  ``MiniRocket`` + ``RidgeClassifierCV`` stays the reference in a slow test and in docs/results.md.
* ``mrhydra`` (full): MultiRocket-Hydra (aeon's ``MultiRocket`` + ``HydraTransformer``, Hydra's counts
  scaled as aeon's ``MultiRocketHydraClassifier`` does: sqrt, clipped at 0), then the same ridge.
* ``quant`` (full): aeon's ``QUANTTransformer`` (interval quantiles) and extremely randomised trees as
  aeon's ``QUANTClassifier`` (entropy), with fewer trees and features per split (:data:`QUANT_TREES`,
  :data:`QUANT_MAX_FEATURES`: an eighth of the cost on hapt6).

Each transform is fitted on the training windows once and applied once to each window set
(training, validation, test); the heads are fitted on the training windows, scored on the
validation windows (the ridge penalty is chosen there), and with ``refit`` fitted again on training
+ validation windows for the test predictions, as harvit's model is refitted on all its training
data after model selection. The transforms are not refitted.

aeon is an optional extra (``pip install 'harvit[minirocket]'``): :func:`load_aeon` returns None
without it, and the baselines that need it (MultiRocket-Hydra, QUANT) are skipped with one line.
Sizes (:data:`MINIROCKET_FEATURES`, :data:`MULTIROCKET_KERNELS`, :data:`HYDRA_GROUPS`,
:data:`QUANT_TREES`) are chosen to keep the baseline step cheap; see docs/results.md for what each
costs on hapt6.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from harvit.evaluation.baseline_registry import BaselineInputs, Fitted, register_baseline
from harvit.evaluation.ridge import describe, fit_ridge, log_fit
from harvit.features.rocket import RocketFeatures
from harvit.features.store import rocket_counts
from harvit.utils.logging import log
from harvit.utils.progress import Progress
from harvit.utils.runtime import compute_threads

MINIROCKET_FEATURES = 9_996
"""MiniRocket's default number of features (aeon's 10,000 kernels: 84 kernels x dilations x biases)."""
MULTIROCKET_KERNELS = 1_250
"""MultiRocket kernels (aeon's default 6250 gives ~50k features: a 5x costlier ridge); 8 features each."""
HYDRA_KERNELS, HYDRA_GROUPS = 8, 64
"""Hydra's kernels per group and groups (aeon's defaults)."""
QUANT_TREES = 100
"""Extremely randomised trees on QUANT's features (aeon's default: 200)."""
TRANSFORM_ROWS = 2048
"""Windows per call of aeon's transforms: Hydra convolves a whole call at once, so its memory grows with the
windows per call."""
TREE_STEP = 10
"""Trees grown per step of a forest's fit (a warm start: the same forest as one fit, with progress between)."""
QUANT_MAX_FEATURES = "sqrt"
"""Features tried per split (aeon's default is 0.1 of ~10k; sqrt costs a fraction of it for the same accuracy:
docs/results.md)."""


def load_aeon() -> Any | None:
    """aeon's transform modules, or None when aeon is not installed.

    Imported on first use: aeon (numba) takes seconds to import, and most harvit commands never need it.
    """
    try:
        conv = importlib.import_module("aeon.transformations.collection.convolution_based")
        interval = importlib.import_module("aeon.transformations.collection.interval_based")
    except ImportError:
        return None
    return type("Aeon", (), {"MiniRocket": conv.MiniRocket, "MultiRocket": conv.MultiRocket,
                             "Hydra": conv.HydraTransformer, "QUANT": interval.QUANTTransformer})


def _timed(what: str, fn: Callable[[], Any]) -> tuple[Any, float]:
    """Run ``fn`` with a start line and an end line in the log; returns (result, CPU seconds)."""
    log(f"baseline: {what} ...")
    t, cpu = time.perf_counter(), time.process_time()
    out = fn()
    cpu = time.process_time() - cpu
    log(f"baseline: {what}: done in {time.perf_counter() - t:.1f} s ({cpu:.1f} CPU s)")
    return out, cpu


def _shape(x: np.ndarray) -> str:
    return f"{x.shape[0]} windows x {x.shape[1]} channels x {x.shape[2]} samples"


def _in_chunks(transform: Callable[[np.ndarray], Any], x: np.ndarray, desc: str = "transform") -> np.ndarray:
    """``transform`` of windows x [N, C, T] in chunks of :data:`TRANSFORM_ROWS`, as float32 [N, F]; a long one
    shows its progress as ``desc``."""
    parts = []
    with Progress(desc, len(x), unit="windows") as bar:
        for a in range(0, len(x), TRANSFORM_ROWS):
            parts.append(np.asarray(transform(x[a:a + TRANSFORM_ROWS]), dtype=np.float32))
            bar.update(len(parts[-1]))
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _transform_all(name: str, make: Callable[[], Any], xs: dict[str, np.ndarray],
                   y_train: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], float]:
    """Fit a transform on ``xs["train"]`` [N, C, T] and apply it to every set in chunks (each window's features
    are its own); returns (features, CPU s)."""
    def run() -> dict[str, np.ndarray]:
        tr = make().fit(xs["train"], y_train)
        return {k: _in_chunks(tr.transform, x, f"baseline: {name} features of the {k} windows") for k, x in xs.items()}

    total = sum(len(v) for v in xs.values())
    return _timed(f"{name} features of {total} windows ({_shape(xs['train'])} to fit)", run)


def _ridge_head(name: str, feats: dict[str, np.ndarray], data: BaselineInputs
                ) -> tuple[np.ndarray, np.ndarray, dict[str, Any], float]:
    """The fast ridge on features: (val predictions, test predictions, ridge summary, CPU s)."""
    n, p = feats["train"].shape
    ys = data.ys
    model, cpu = _timed(f"{name} ridge on {n} windows x {p} features (alpha chosen on {len(ys['val'])} "
                        "validation windows)",
                        lambda: fit_ridge(feats["train"], ys["train"], feats["val"], ys["val"], data.n_classes,
                                          refit=data.refit, name=name, threads=data.torch_threads))
    log_fit(name, model)
    return model.val_pred, model.predict(feats["test"]), {**describe(model), "n_features": int(p)}, cpu


@register_baseline("MiniRocket", reads="series", tier="fast")
def minirocket(data: BaselineInputs) -> Fitted:
    """MiniRocket (:data:`MINIROCKET_FEATURES` features, counts stored once per window set) + the fast ridge."""
    def counts() -> dict[str, np.ndarray]:
        with compute_threads(data.torch_threads):  # the run's torch threads (scikit-learn's fits get one)
            rocket = RocketFeatures.fit(data.xs["train"], MINIROCKET_FEATURES, seed=data.seed, standardise=False)
            return {k: rocket_counts(rocket, x) for k, x in data.xs.items()}

    total = sum(len(v) for v in data.xs.values())
    feats, cpu_t = _timed(f"MiniRocket features of {total} windows ({_shape(data.xs['train'])} to fit; stored "
                          "counts are read)", counts)
    val_pred, test_pred, extra, cpu_h = _ridge_head("MiniRocket", feats, data)
    return _entry(val_pred, test_pred, extra, cpu_t, cpu_h, data.refit)


def _hydra_scale(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """aeon's sparse scaling of Hydra's counts: sqrt of the clipped counts, standardised on the training
    windows over the non-zero entries only, zeros kept at zero (the ridge then standardises all features).
    One float32 copy per array (in place after the square root)."""
    t = np.sqrt(np.clip(train, 0, None))
    mask = (t != 0).mean(0)
    mu = t.mean(0) + 1e-8
    sigma = t.std(0) + 1e-8
    del t
    out = []
    for a in (train, *others):
        s = np.sqrt(np.clip(a, 0, None)).astype(np.float32, copy=False)
        nonzero = s != 0
        s -= mu
        s *= nonzero
        s += mu * mask
        s /= sigma
        out.append(s)
    return out


@register_baseline("MultiRocket-Hydra", reads="series", tier="full", needs="aeon")
def mrhydra(data: BaselineInputs) -> Fitted:
    """MultiRocket-Hydra + fast ridge (one ridge over both feature sets, as aeon's classifier)."""
    aeon, xs, seed = data.aeon, data.xs, data.seed
    hydra, cpu_h = _transform_all("Hydra", lambda: aeon.Hydra(n_kernels=HYDRA_KERNELS, n_groups=HYDRA_GROUPS,
                                                               n_jobs=1, random_state=seed), xs)
    hydra = dict(zip(("train", "val", "test"), _hydra_scale(hydra["train"], hydra["val"], hydra["test"]),
                     strict=True))
    mr, cpu_m = _transform_all("MultiRocket", lambda: aeon.MultiRocket(n_kernels=MULTIROCKET_KERNELS, n_jobs=1,
                                                                         random_state=seed), xs)
    feats = {s: np.concatenate([hydra[s], mr[s]], axis=1).astype(np.float32) for s in hydra}
    del hydra, mr
    val_pred, test_pred, extra, cpu_r = _ridge_head("MultiRocket-Hydra", feats, data)
    return _entry(val_pred, test_pred, extra, cpu_h + cpu_m, cpu_r, data.refit)


@register_baseline("QUANT", reads="series", tier="full", needs="aeon")
def quant(data: BaselineInputs) -> Fitted:
    """QUANT features + extremely randomised trees (fitted on training windows; refitted on training +
    validation windows for the test predictions when ``refit``)."""
    from sklearn.ensemble import ExtraTreesClassifier

    ys, seed, refit = data.ys, data.seed, data.refit
    feats, cpu_t = _transform_all("QUANT", lambda: data.aeon.QUANT(), data.xs, ys["train"])

    def trees(x: np.ndarray, y: np.ndarray) -> ExtraTreesClassifier:
        est = ExtraTreesClassifier(n_estimators=QUANT_TREES, max_features=QUANT_MAX_FEATURES, criterion="entropy",
                                   random_state=seed, n_jobs=1)
        return _grow(est, x, y, "baseline: QUANT trees")

    n, p = feats["train"].shape
    est, cpu_h = _timed(f"QUANT trees ({QUANT_TREES}) on {n} windows x {p} features",
                        lambda: trees(feats["train"], ys["train"]))
    val_pred = est.predict(feats["val"])
    if refit:
        est, cpu_r = _timed(f"QUANT trees refit on {n + len(ys['val'])} training + validation windows",
                            lambda: trees(np.vstack([feats["train"], feats["val"]]),
                                          np.concatenate([ys["train"], ys["val"]])))
        cpu_h += cpu_r
    return _entry(val_pred, est.predict(feats["test"]), {"n_features": int(p), "trees": QUANT_TREES},
                  cpu_t, cpu_h, refit)


def _grow(forest: Any, x: np.ndarray, y: np.ndarray, desc: str) -> Any:
    """Fit a scikit-learn forest ``forest`` on ``x`` [N, F], ``y`` [N] :data:`TREE_STEP` trees at a time (warm
    start: the trees and their random states are those of one fit), showing progress as ``desc``."""
    total = int(forest.n_estimators)
    forest.set_params(warm_start=True)
    with Progress(desc, total, unit="trees") as bar:
        for k in range(min(TREE_STEP, total), total + TREE_STEP, TREE_STEP):
            grown = len(getattr(forest, "estimators_", []))
            forest.set_params(n_estimators=min(k, total))
            forest.fit(x, y)
            bar.update(len(forest.estimators_) - grown)
            if len(forest.estimators_) >= total:
                break
    return forest.set_params(warm_start=False)


def _entry(val_pred: np.ndarray, test_pred: np.ndarray, extra: dict[str, Any], cpu_transform: float,
           cpu_head: float, refit: bool) -> Fitted:
    """Validation predictions (of the training-only fit), test predictions (of the refit when ``refit``),
    extras with the transform's and the head's CPU s."""
    return Fitted(np.asarray(val_pred), np.asarray(test_pred),
                  {**extra, "refit_on_train_val": refit, "transform_cpu_s": round(cpu_transform, 3),
                   "head_cpu_s": round(cpu_head, 3)})
