"""Cross-validation by subject: ``harvit cv --folds K|loso [train flags]``.

The *training subjects* are split into K folds (a seeded shuffle of the subjects, then K nearly
equal parts) or one fold per subject (``loso``). Fold k trains one run whose validation subjects
are that fold's (``Config.val_subjects``) under ``<output-dir>/<run-name>/fold_<k>/``; the test
split (the data set's own test subjects) is scored once per fold run, as in any run, and never
feeds a choice. Per fold, the baselines (:func:`harvit.evaluation.baseline.run_baseline`) are
fitted on the same training and validation subjects.

Resumable per fold: a fold with ``training_results.json`` is read back, a fold with ``latest.pt``
is resumed (a fold killed with kill -9 continues where its last checkpoint left it), any other is
started. ``cv.json`` in the parent folder records the folds, so a resumed cv uses the same ones.

Writes ``cv_results.json`` and ``cv_report.md`` in the parent folder: per fold its subjects,
every registered metric (:data:`harvit.evaluation.metrics.METRICS`) on validation (of the selection's
model: ``selected.pt`` when the fold was refit on all its training windows, else ``best.pt``) and on
test (of the fold's final model); mean and standard
deviation over folds; the baselines' validation scores on the same folds; and the test score of
the ensemble of the fold runs (mean of their window log-probabilities).
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from harvit.config import Config
from harvit.data import Dataset, load_run_dataset, train_val_split
from harvit.evaluation.baseline import run_baseline
from harvit.evaluation.baseline_registry import display_name
from harvit.evaluation.ensemble import FOLD_PREFIX, evaluate_ensemble
from harvit.evaluation.evaluate import evaluate_checkpoint
from harvit.evaluation.metrics import HEADLINE, METRICS, metric_record, metric_value
from harvit.training.loop import train
from harvit.training.results import TRAINING_RESULTS_FILE, TrainingResults
from harvit.utils.atomic import write_json, write_text
from harvit.utils.errors import HarvitError
from harvit.utils.logging import log

CV_FILE = "cv.json"
RESULTS_FILE = "cv_results.json"
REPORT_FILE = "cv_report.md"


def make_folds(subjects: list[int], folds: int | str, seed: int) -> list[list[int]]:
    """Split subject ids into folds: ``loso`` (one per subject, in order) or K folds of a seeded shuffle.

    Returns:
        K sorted lists of subject ids, disjoint, together every subject once; sizes differ by at most 1.

    Raises:
        HarvitError: naming ``--folds`` when K is not in 2..len(subjects).
    """
    subjects = sorted(int(s) for s in subjects)
    if folds == "loso":
        if len(subjects) < 2:
            raise HarvitError(f"--folds loso: needs at least 2 training subjects, got {len(subjects)}")
        return [[s] for s in subjects]
    try:
        k = int(folds)
    except (TypeError, ValueError):
        raise HarvitError(f"--folds: expected a number of folds or 'loso', got {folds!r}") from None
    if not 2 <= k <= len(subjects):
        raise HarvitError(f"--folds: {k} folds of {len(subjects)} training subjects; expected 2..{len(subjects)}")
    order = np.random.default_rng(seed).permutation(np.array(subjects, dtype=np.int64))
    return [sorted(int(s) for s in part) for part in np.array_split(order, k)]


def fold_config(cfg: Config, k: int, subjects: list[int]) -> Config:
    """The config of fold ``k``: the parent's settings, validation = ``subjects``, in ``<run_dir>/fold_<k>``."""
    return dataclasses.replace(cfg, output_dir=str(cfg.run_dir), run_name=f"{FOLD_PREFIX}{k}",
                               val_subjects=",".join(str(s) for s in subjects), resume=False)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HarvitError(f"{path}: not readable JSON ({e})") from None


def _check_plan(parent: Path, plan: dict[str, Any]) -> None:
    """Refuse a parent folder that holds another cross-validation (other folds or settings)."""
    path = parent / CV_FILE
    if not path.is_file():
        write_json(path, plan)
        return
    saved = _read_json(path)
    if saved.get("folds") != plan["folds"] or saved.get("config") != plan["config"]:
        raise HarvitError(f"{parent} holds a cross-validation with other folds or settings ({CV_FILE}); use the "
                          "same flags to resume it, or another --run-name")


def run_fold(cfg: Config, ds: Dataset) -> tuple[TrainingResults, str]:
    """Train (or resume, or read back) one fold run; returns (training results, what happened)."""
    run = cfg.run_dir
    if (run / TRAINING_RESULTS_FILE).is_file():
        return TrainingResults.load(run / TRAINING_RESULTS_FILE), "done before"
    resume = (run / "latest.pt").is_file()
    results = train(dataclasses.replace(cfg, resume=resume), dataset=ds)
    return results, "resumed" if resume else "trained"


def run_cv(cfg: Config, folds: int | str = 5, dataset: Dataset | None = None, baselines: bool = True,
           minirocket: bool = True, ensemble: bool = True) -> dict[str, Any]:
    """Cross-validate ``cfg`` over folds of its training subjects (see the module docstring).

    Args:
        cfg: the settings of every fold run; ``cfg.run_dir`` becomes the parent folder.
        folds: K >= 2 or ``"loso"``.
        dataset: windows to use (default: load ``cfg.dataset`` with ``cfg.train_stride``).
        baselines: fit the baselines on each fold (cached by windows, subjects and seed).
        minirocket: include MiniRocket among them (minutes per fold on a CPU).
        ensemble: score the ensemble of the fold runs on the test split.

    Returns:
        The ``cv_results.json`` dict.
    """
    t0 = time.perf_counter()
    cfg = cfg.validate()
    if cfg.val_subjects:
        raise HarvitError("--val-subjects: harvit cv chooses each fold's validation subjects; leave it out")
    ds = dataset if dataset is not None else load_run_dataset(cfg)
    parts = make_folds(ds.train.subjects(), folds, cfg.val_seed)
    parent = cfg.run_dir
    parent.mkdir(parents=True, exist_ok=True)
    plan_cfg = {k: v for k, v in cfg.to_dict().items() if k not in ("resume", "progress", "tensorboard", "threads")}
    _check_plan(parent, {"folds": parts, "folds_arg": str(folds), "config": plan_cfg})
    log(f"cv: {len(parts)} folds of {len(ds.train.subjects())} training subjects -> {parent}")
    rows: list[dict[str, Any]] = []
    base_rows: dict[str, list[dict[str, float]]] = {}
    for k, subjects in enumerate(parts):
        fcfg = fold_config(cfg, k, subjects)
        log(f"cv: fold {k} (validation subjects {', '.join(map(str, subjects))})")
        results, how = run_fold(fcfg, ds)
        selected = fcfg.run_dir / "selected.pt"  # a refit fold's best.pt trained on its validation windows
        val = evaluate_checkpoint(selected if selected.is_file() else fcfg.run_dir, split="val", dataset=ds,
                                  device=cfg.device, json_path=fcfg.run_dir / "evaluation_val.json")
        n_classes = len(ds.train.classes)
        test = {f"test_{m}": results.metric(m) for m in METRICS}
        rows.append({"fold": k, "val_subjects": subjects, "run_dir": str(fcfg.run_dir), "status": how,
                     **{f"val_{m}": val.get(m) for m in METRICS},
                     "best_epoch": results.best_epoch, "refit": results.refit is not None,
                     **test, "train_time_s": results.train_time_s})
        if baselines:
            b = run_baseline(cfg.dataset, seed=cfg.val_seed, val_subjects=subjects, windows=ds,
                             train_stride=cfg.train_stride_or_none, minirocket=minirocket,
                             baseline_set=cfg.baseline_set)
            val_y = train_val_split(ds.train, cfg.val_fraction, cfg.val_seed, subjects)[1].y
            for key, m in b["models"].items():
                base_rows.setdefault(key, []).append({
                    **metric_record(val_y, np.asarray(m["val_pred"]), n_classes, prefix="val_"),
                    **{f"test_{t.name}": metric_value(m, t, "test_", b.get("test_y_true"), m.get("test_pred"),
                                                      n_classes) for t in METRICS.values()}})
    result: dict[str, Any] = {
        "dataset": cfg.dataset, "folds_arg": str(folds), "n_folds": len(parts), "seed": cfg.seed,
        "fold_seed": cfg.val_seed, "folds": rows, "summary": _summary(rows),
        "baselines": {k: {"name": display_name(k), "folds": v, "summary": _summary(v)}
                      for k, v in base_rows.items()},
        "config": cfg.to_dict(),
    }
    if ensemble:
        ens = evaluate_ensemble([parent], split="test", dataset=ds, device=cfg.device,
                                json_path=parent / "evaluation_ensemble_test.json")
        result["ensemble_test"] = {"members": len(ens["members"]), **{m: ens[m] for m in METRICS},
                                   "per_subject_mean": {m: ens["per_subject"][f"mean_{m}"] for m in METRICS}}
    result["total_time_s"] = round(time.perf_counter() - t0, 3)
    write_json(parent / RESULTS_FILE, result)
    write_text(parent / REPORT_FILE, cv_report(result))
    log(f"{summary_line(result)} -> {parent / REPORT_FILE}")
    return result


def summary_line(result: dict[str, Any]) -> str:
    """``cv: validation accuracy 93.10 +- 1.20, macro-F1 ... over 5 folds``: every registered metric's mean and sd."""
    s = result["summary"]
    scores = ", ".join(f"{m.display} {_mean_sd_text(s[f'val_{m.name}'])}" for m in METRICS.values()
                       if f"val_{m.name}" in s)
    return f"cv: validation {scores} over {result['n_folds']} folds"


def _score_keys() -> list[str]:
    """``val_<key>`` then ``test_<key>`` of every registered metric."""
    return [f"{split}_{m}" for split in ("val", "test") for m in METRICS]


def _summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation (0 for one fold) of each score over folds."""
    out = {}
    for key in _score_keys():
        v = [float(r[key]) for r in rows if r.get(key) is not None]
        if v:
            out[key] = {"mean": statistics.mean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0}
    return out


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def _mean_sd_text(s: dict[str, float]) -> str:
    """``mean ± sd`` of a fraction's summary, in percent."""
    return f"{100 * s['mean']:.2f} ± {100 * s['std']:.2f}"


def cv_report(result: dict[str, Any]) -> str:
    """The markdown of ``cv_report.md``."""
    def percent_cell(r: dict[str, Any], key: str) -> str:
        return f"{100 * r[key]:.2f}" if r.get(key) is not None else "-"

    def mean_sd_cell(s: dict[str, Any], key: str) -> str:
        return _mean_sd_text(s[key]) if key in s else "-"

    keys = _score_keys()
    heads = [f"{split} {m.display} %" for split in ("val", "test") for m in METRICS.values()]  # as _score_keys
    rows = [[r["fold"], ", ".join(map(str, r["val_subjects"]))] + [percent_cell(r, k) for k in keys] + [r["best_epoch"]]
            for r in result["folds"]]
    s = result["summary"]
    rows.append(["**mean ± sd**", ""] + [mean_sd_cell(s, k) for k in keys] + [""])
    refit = any(r.get("refit") for r in result["folds"])
    out = [f"# Cross-validation by subject: `{result['dataset']}`, {result['n_folds']} folds "
           f"({result['folds_arg']})", "",
           "Each fold holds out its subjects for validation (model selection and early stopping); the test "
           "split is the data set's own test subjects, scored once per fold run"
           + (" with the fold's model refit on all its training windows for the selected epochs." if refit else "."),
           "", "## Folds (harvit)", "",
           _table(["fold", "validation subjects", *heads, "best epoch"], rows), ""]
    if result.get("baselines"):
        brows = [["harvit (this cv)"] + [mean_sd_cell(s, k) for k in keys]]
        for b in result["baselines"].values():
            brows.append([b["name"]] + [mean_sd_cell(b["summary"], k) for k in keys])
        out += ["## Baselines on the same folds", "",
                "Fitted on each fold's training subjects, scored on its validation subjects (mean ± sd over folds).",
                "", _table(["model", *heads], brows), ""]
        head = f"val_{HEADLINE}"
        per_fold = [[r["fold"], percent_cell(r, head)]
                    + [percent_cell(b["folds"][i], head) for b in result["baselines"].values()]
                    for i, r in enumerate(result["folds"])]
        label = METRICS.get(HEADLINE).display
        out += [_table(["fold", f"harvit val {label} %"] + [f"{b['name']} val {label} %"
                                                             for b in result["baselines"].values()], per_fold), ""]
    if result.get("ensemble_test"):
        e = result["ensemble_test"]
        scores = ", ".join(f"{m.display} {100 * e[m.name]:.2f}%" for m in METRICS.values() if m.name in e)
        means = ", ".join(f"{m.display} {100 * v:.2f}%" for m in METRICS.values()
                          if (v := (e.get("per_subject_mean") or {}).get(m.name)) is not None)
        out += ["## Ensemble of the fold runs (test)", "",
                f"Mean of the {e['members']} fold runs' window log-probabilities: test {scores}"
                + (f"; mean over subjects: {means}" if means else "") + ".", ""]
    out += [f"_Written by `harvit cv` in {result['total_time_s']:.0f} s._", ""]
    return "\n".join(out)
