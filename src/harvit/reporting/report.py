"""``report.md`` and ``plots/`` of a finished run folder: the steps in order.

:func:`create_training_report` gathers the run (:mod:`harvit.reporting.gather`: ``training_results.json``,
``metrics.jsonl``, ``config.json``, the data set, and the baselines of ``--baseline-set`` fitted on the same
data set, windows, seed and validation subjects once, cached as ``baseline.json``; ``--no-baselines`` skips
them), draws the plots (:mod:`harvit.reporting.plots`), and writes the markdown
(:mod:`harvit.reporting.sections`) with its verdict (:mod:`harvit.reporting.verdict`): the model named by
its branches against the strongest baseline fitted (best validation accuracy) by a paired test on the same
test windows (McNemar's exact test) with a Wilson 95% interval for each accuracy: "ahead" or "behind" only
when p < 0.05, else "level"; a sibling run without a branch (an ablation) says which branch carried the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harvit.models.loading import load_trained
from harvit.reporting import plots as viz
from harvit.reporting.encoded import plot_encoded_images
from harvit.reporting.gather import BASELINE_FILE, RunData, keep_in_run, load_or_run_baseline, read_json
from harvit.reporting.plots import load_history
from harvit.reporting.sections import (
    baseline_section,
    config_section,
    per_subject_section,
    plots_section,
    results_section,
    split_section,
    summary_section,
    test_model_line,
    timing_section,
)
from harvit.reporting.verdict import ablation_sentence, model_name, verdict
from harvit.training.results import TRAINING_RESULTS_FILE, TrainingResults
from harvit.utils.atomic import write_text
from harvit.utils.errors import HarvitError

if TYPE_CHECKING:
    from harvit.data import Dataset

__all__ = ["BASELINE_FILE", "PLOTS", "create_training_report", "keep_in_run", "make_plots", "verdict"]

PLOTS = {
    "training_history": ("training_history.png", "Loss and accuracy per epoch"),
    "lr_schedule": ("lr_schedule.png", "Learning-rate schedule"),
    "confusion_matrix": ("confusion_matrix.png", "Confusion matrix (test)"),
    "per_class_accuracy": ("per_class_accuracy.png", "Per-class accuracy (test)"),
    "per_subject_accuracy": ("per_subject_accuracy.png", "Per-subject accuracy (test)"),
    "encoded_images": ("encoded_images.png", "What the model sees: encoded test windows per class"),
}
"""Plot key -> (file name under ``plots/``, heading in the report)."""


def make_plots(run: Path, results: TrainingResults, baseline: dict[str, Any] | None, data: RunData
               ) -> tuple[dict[str, Path], list[str]]:
    """Draw every plot it can into ``run/plots``; returns (key -> path, notes on skipped plots)."""
    plots_dir = run / "plots"
    made: dict[str, Path] = {}
    notes: list[str] = []

    def attempt(key: str, draw: Callable[[Path], Path]) -> None:
        try:
            made[key] = draw(plots_dir / PLOTS[key][0])
        except HarvitError as e:
            notes.append(f"{PLOTS[key][1]}: not drawn ({e})")

    classes = results.classes
    attempt("training_history", lambda p: viz.plot_training_history(run, p))
    attempt("lr_schedule", lambda p: viz.plot_lr_schedule(run, p, config=results.config))
    cm = results.confusion_matrix
    attempt("confusion_matrix", lambda p: viz.plot_confusion_matrices(cm, classes, p))
    reference = None
    if baseline is not None:
        reference = {m["name"]: m["per_class_accuracy"] for m in baseline["models"].values()}
    attempt("per_class_accuracy", lambda p: viz.plot_per_class_accuracy(results.per_class_accuracy, p,
                                                                         reference))
    ps = (results.test_per_subject or {}).get("subjects")
    if ps:
        ref_s = None if baseline is None else {m["name"]: m["per_subject"]["subjects"]
                                               for m in baseline["models"].values() if m.get("per_subject")}
        attempt("per_subject_accuracy", lambda p: viz.plot_per_subject_accuracy(ps, p, ref_s))

    def encoded(p: Path) -> Path:
        ds = data.get()
        if ds is None:
            raise HarvitError(data.problem or "no data")

        tm = load_trained(run, "cpu")
        return plot_encoded_images(tm.model, ds.test, p, per_class=2)

    attempt("encoded_images", encoded)
    return made, notes


def create_training_report(run_dir: str | Path, out: str | Path = "report.md", dataset: Dataset | None = None,
                           baseline: bool | None = None) -> Path:
    """Write the run's plots (``plots/``) and markdown report.

    Args:
        run_dir: a finished run folder (holds ``training_results.json``).
        out: report path; a relative path is inside the run folder (default ``<run>/report.md``).
        dataset: the :class:`~harvit.data.Dataset` the run was trained on, when it was given in
            code (default: load the run's data set by name).
        baseline: compare with the baselines (cached as ``<run>/baseline.json``); None: as the run's
            config says (``--no-baselines`` turns them off; default on).

    Returns:
        The report's path.
    """
    t0 = time.perf_counter()
    run = Path(run_dir)
    if not run.is_dir():
        raise HarvitError(f"{run}: no such run folder")
    if not (run / TRAINING_RESULTS_FILE).is_file():
        raise HarvitError(f"{run}: no {TRAINING_RESULTS_FILE}; the run has not finished (resume it with "
                          "`harvit train ... --resume`)")
    saved = read_json(run / TRAINING_RESULTS_FILE)
    if isinstance(saved, dict) and not saved.get("config"):  # results written without their settings
        saved["config"] = read_json(run / "config.json")
    results = TrainingResults.from_json(saved, source=str(run / TRAINING_RESULTS_FILE))
    cfg = results.config
    history: list[dict[str, Any]] = []
    if (run / "metrics.jsonl").is_file():
        history, _ = load_history(run / "metrics.jsonl")
    data = RunData(cfg, results, given=dataset)
    if baseline is None:
        baseline = cfg.baselines
    base, base_note = (None, "turned off (--no-baselines)") if not baseline else load_or_run_baseline(run, data)
    out_path = Path(out)
    if not out_path.is_absolute():
        out_path = run / out_path
    plots, notes = make_plots(run, results, base, data)

    lines = [
        f"# Training report: `{run.name}`", "",
        f"{model_name(cfg)}, encoder {cfg.encoder} on `{cfg.dataset}`, mode `{cfg.mode}`, "
        f"encodings `{cfg.encodings}`, {cfg.img_size} px; generated {time.strftime('%Y-%m-%d %H:%M')}.", "",
        *summary_section(results),
        *([test_model_line(results), ""] if results.test_model else []),
    ]
    if base is not None:
        lines += [verdict(results, base), ""]
    else:
        lines += [f"**No baseline comparison: the baseline is {base_note}.**", ""]
    carried = ablation_sentence(run, results)
    if carried:
        lines += [carried, ""]
    lines += config_section(results)
    lines += split_section(results)
    lines += results_section(results)
    lines += per_subject_section(results, base)
    lines += baseline_section(results, base, base_note)
    lines += timing_section(results, history)
    lines += plots_section(plots, {k: v[1] for k, v in PLOTS.items()}, notes, out_path)
    lines += [f"_Report written by `harvit report` in {time.perf_counter() - t0:.1f} s._", ""]
    write_text(out_path, "\n".join(lines))
    return out_path
