"""The report's verdict: harvit's model against the strongest baseline, and what carried the result.

* :func:`model_name`: the model named by what it is, from the run's config (only the branches it has):
  "harvit's model (image encoder + window statistics + convolution features)".
* :func:`verdict`: one bold sentence on the strongest baseline fitted (the baseline with the best
  **validation** accuracy: the test split chooses nothing; it names the baselines ``--baseline-set`` left
  out), by McNemar's exact test on the same test windows (:mod:`harvit.evaluation.significance`; "ahead"
  or "behind" only when p < 0.05), with each accuracy's Wilson 95% interval; then one sentence per other baseline.
* :func:`ablation_sentence`: where a sibling run (same folder of runs, same data set, windows, split
  and seed, same test windows) lacks one of this run's branches, whether that branch carried the
  result, by the same paired test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harvit.config import Config
from harvit.evaluation.baseline import strongest as strongest_model
from harvit.evaluation.baseline_registry import display_name
from harvit.evaluation.metrics import HEADLINE
from harvit.evaluation.significance import ALPHA, compare, wilson_interval
from harvit.reporting.markdown import p_value, pct, with_ci
from harvit.training.results import TRAINING_RESULTS_FILE, TrainingResults
from harvit.utils.errors import HarvitError

#: The model's branches: setting -> how the report names it.
BRANCHES = {
    "images": "image encoder",
    "window_stats": "window statistics",
    "rocket_features": "convolution features",
}
#: Settings a sibling run must share to count as an ablation of this run (besides the test windows).
ABLATION_SAME = ("dataset", "seed", "split_seed", "val_fraction", "val_subjects", "train_stride")


def branches(cfg: Config) -> list[str]:
    """The branch keys of :data:`BRANCHES` a run's settings turn on."""
    have = {"images": cfg.images, "window_stats": cfg.window_stats, "rocket_features": cfg.rocket_features > 0}
    return [k for k in BRANCHES if have[k]]


def model_name(cfg: Config) -> str:
    """``harvit's model (image encoder + window statistics + convolution features)``: only its branches."""
    return f"harvit's model ({' + '.join(BRANCHES[k] for k in branches(cfg))})"


def paired_comparisons(results: TrainingResults, baseline: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    """Baseline key -> :func:`harvit.evaluation.significance.compare` of the model (A) against that baseline
    (B) on the same test windows; None when the run or the baseline kept no per-window test predictions, or
    their test windows differ."""
    y, ours = results.test_y_true, results.test_y_pred
    if y is None or ours is None or baseline.get("test_y_true") != y:
        return None
    out = {}
    for key, m in baseline["models"].items():
        if m.get("test_pred") is None or len(m["test_pred"]) != len(y):
            return None
        out[key] = compare(y, ours, m["test_pred"])
    return out


def _unpaired(acc_a: float, acc_b: float, n: int | None) -> str:
    """The verdict from the Wilson intervals alone (no per-window predictions): apart or overlapping."""
    if not n:
        return "level"
    (lo_a, hi_a), (lo_b, hi_b) = wilson_interval(round(acc_a * n), n), wilson_interval(round(acc_b * n), n)
    return "ahead" if lo_a > hi_b else "behind" if hi_a < lo_b else "level"


def strongest(baseline: dict[str, Any]) -> str:
    """Key of the strongest baseline fitted: the best validation accuracy (ties: the field's standard time-series
    classifiers first, :func:`harvit.evaluation.baseline_registry.tie_order`)."""
    return strongest_model(baseline["models"])


def verdict(results: TrainingResults, baseline: dict[str, Any]) -> str:
    """One bold sentence: is harvit's model (named by its branches) ahead of, level with or behind the
    strongest baseline (named; the best validation accuracy), by McNemar's exact test on the same test
    windows (p < 0.05), with each accuracy's Wilson 95% interval; then the other baselines in one sentence each.

    Without per-window predictions (a run from before they were saved) the verdict rests on the
    intervals alone: "ahead" or "behind" only when they do not overlap, and it says so.
    """
    ours_acc = results.test[HEADLINE]
    n = results.test_windows
    models = baseline["models"]
    best_key = strongest(baseline)
    paired = paired_comparisons(results, baseline)

    def how(key: str) -> tuple[str, str]:
        m = models[key]
        if paired is None:
            word = _unpaired(ours_acc, m["test_accuracy"], n)
            return word, "intervals only: no per-window test predictions were saved with this run"
        t = paired[key]
        return t["verdict"], (f"McNemar's exact test on the same {t['n']} test windows: {p_value(t['p_value'])}; "
                              f"harvit's model alone right on {t['b']}, the baseline alone on {t['c']}")

    best = models[best_key]
    word, why = how(best_key)
    left = baseline.get("left_out") or {}
    diff = 100 * (ours_acc - best["test_accuracy"])
    ours, ref = with_ci(ours_acc, n), with_ci(best["test_accuracy"], n)
    name = model_name(results.config)
    fitted = f"{len(models)} baseline{'s' if len(models) > 1 else ''}" + (" fitted" if left else "")
    not_fitted = (f"; {', '.join(display_name(k) for k in left)} not fitted (`--baseline-set all` fits "
                  f"{'them' if len(left) > 1 else 'it'})") if left else ""
    other = (f"the strongest baseline{' fitted' if left else ''}, {best['name']} (the best validation accuracy of "
             f"{fitted}, {pct(best.get(f'val_{HEADLINE}', 0.0))}{not_fitted})")
    if word == "ahead":
        head = f"**{name[0].upper()}{name[1:]} is ahead of {other}: {ours} against {ref}, {diff:.1f} points ({why}).**"
    elif word == "behind":
        head = f"**{name[0].upper()}{name[1:]} is behind {other}: {ours} against {ref}, {-diff:.1f} points ({why}).**"
    else:
        head = (f"**{name[0].upper()}{name[1:]} and {other} are level within noise: {ours} against {ref}, a "
                f"difference of {abs(diff):.1f} points that is not significant at {ALPHA:g} ({why}).**")
    others = []
    for key, m in models.items():
        if key == best_key:
            continue
        w, why = how(key)
        others.append(f"Against {m['name']}, {with_ci(m['test_accuracy'], n)}, harvit's model is {w} ({why}).")
    tail = (" " + " ".join(others)) if others else ""
    return head + tail + " (Test accuracy; same data set, windows, subject split and seed.)"


def find_ablations(run: Path, results: TrainingResults) -> list[tuple[Path, TrainingResults]]:
    """Sibling runs (folders beside ``run``) with the same data, split, seed and test windows and a strict
    subset of this run's branches: [(folder, its training results)]."""
    cfg = results.config
    mine = set(branches(cfg))
    found = []
    try:
        siblings = sorted(p for p in run.resolve().parent.iterdir() if p.is_dir() and p.resolve() != run.resolve())
    except OSError:
        return []
    for other in siblings:
        if not (other / TRAINING_RESULTS_FILE).is_file():
            continue
        try:
            res = TrainingResults.load(other / TRAINING_RESULTS_FILE)
        except HarvitError:
            continue
        if any(getattr(res.config, k) != getattr(cfg, k) for k in ABLATION_SAME):
            continue
        if res.test_y_true is None or res.test_y_true != results.test_y_true:
            continue
        if set(branches(res.config)) < mine:
            found.append((other, res))
    return found


def ablation_sentence(run: Path, results: TrainingResults) -> str | None:
    """Which branch carried the result, where a sibling run lacks some of this run's branches; None without one.

    Per ablation: the same paired test of this run against the sibling. "level" means the missing
    branches add nothing measurable (the sibling's branches carry the result); "ahead" that they carry part of it.
    """
    if results.test_y_true is None or results.test_y_pred is None:
        return None
    mine = branches(results.config)
    out = []
    for other, ores in find_ablations(run, results):
        theirs = branches(ores.config)
        missing = [BRANCHES[k] for k in mine if k not in theirs]
        kept = " + ".join(BRANCHES[k] for k in theirs)
        t = compare(results.test_y_true, results.test_y_pred, ores.test_y_pred)
        head = (f"Ablation: run `{other.name}` (same data, split and seed, without the {' and '.join(missing)}) "
                f"scores {pct(t['acc_b'])} against this run's {pct(t['acc_a'])} ({p_value(t['p_value'])}): ")
        if t["verdict"] == "level":
            out.append(head + f"the {' and '.join(missing)} add{'s' if len(missing) == 1 else ''} nothing "
                              f"measurable here; the {kept} carry the result.")
        elif t["verdict"] == "ahead":
            out.append(head + f"the {' and '.join(missing)} carr{'ies' if len(missing) == 1 else 'y'} part of the "
                              "result.")
        else:
            out.append(head + f"the model is better without the {' and '.join(missing)}.")
    return " ".join(out) or None
