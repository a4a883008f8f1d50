"""The report's markdown, section by section: pure functions of the run's results, config and baselines.

Every metric table reads :data:`harvit.evaluation.metrics.METRICS` (its display names and formats);
every baseline row reads the baseline's record, metrics it lacks computed from its per-window predictions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harvit.config import Config
from harvit.evaluation.baseline_registry import BASELINES, READS, display_name
from harvit.evaluation.metrics import HEADLINE, METRICS, metric_value
from harvit.evaluation.significance import wilson_interval
from harvit.reporting.markdown import md_table, p_value, pct
from harvit.reporting.verdict import model_name, paired_comparisons, strongest, verdict
from harvit.training.results import TrainingResults


def summary_section(results: TrainingResults) -> list[str]:
    """The summary table: every registered metric on test (the headline one bold), the mean of subjects,
    the view accuracy and loss, and the selection's validation scores."""
    rows = []
    for m in METRICS.values():
        v = results.metric(m.name)
        if v is not None:
            rows.append([f"test {m.display}", f"**{m.format(v)}**" if m.name == HEADLINE else m.format(v)])
    ps = results.test_per_subject
    if ps:
        rows.append([f"test {METRICS.get(HEADLINE).display}, mean of subjects",
                     METRICS.get(HEADLINE).format(ps[f"mean_{HEADLINE}"])])
    rows += [["test view accuracy", pct(results.test_view_accuracy)],
             ["test loss", f"{results.test_loss:.4f}"],
             ["best validation accuracy", f"{pct(results.best_val_acc)} (epoch {results.best_epoch} of "
                                          f"{results.epochs_run})"]]
    val = [(m, results.metric(m.name, "val")) for m in METRICS.values() if m.name != HEADLINE]
    val = [(m, v) for m, v in val if v is not None]
    if val:
        rows.append([f"validation {', '.join(m.display for m, _ in val)} (that epoch)",
                     ", ".join(m.format(v) for m, v in val)])
    return ["## Summary", "", md_table(["metric", "value"], rows), ""]


def augmentation(cfg: Config) -> str:
    """One line for the report's settings table: the augmentation a run's settings turn on."""
    if not cfg.augment:
        return "off"
    rot = cfg.augment_rotation
    axis = cfg.augment_axis
    turn = "no rotation" if rot <= 0 else (
        f"rotation up to {rot:g} deg about a random axis" if axis == "any" else
        f"roll up to +-{rot:g} deg about x for lying windows" if axis == "lying" else
        f"rotation up to +-{rot:g} deg about {axis}")
    return (f"on: {turn}, magnitude x(1 +- {cfg.augment_scale:g}), shift up to "
            f"{cfg.augment_shift:g} of the window, jitter {cfg.augment_jitter:g} std; "
            "statistics recomputed on the augmented window")


def config_section(results: TrainingResults) -> list[str]:
    """The settings table (the model, its images, the optimisation) and every setting as ``config.json``."""
    cfg = results.config
    head = "none (linear)" if not cfg.hidden_dims.strip() else cfg.hidden_dims
    on_cuda = results.device.startswith("cuda")
    vit_shape = ", ".join(f"{k.replace('_', ' ')} {getattr(cfg, k)}" for k in ("patch_size", "embed_dim", "depth",
                                                                                  "num_heads") if getattr(cfg, k))
    rows = [
        ["preset", cfg.preset],
        ["encoder", f"`{cfg.encoder}`" + (f" ({vit_shape})" if vit_shape else "")],
        ["weights", "pretrained" if cfg.pretrained or cfg.pretrained_path else "random init"],
        ["encoder training", "frozen (head only)" if cfg.freeze_encoder else "fine-tuned"],
        ["head", f"MLP hidden {head}, dropout {cfg.dropout}"],
        ["window statistics", "on: the head also reads the baseline's per-window statistics"
            if cfg.window_stats else "off: the head reads image features only"],
        *([["convolution features", f"{cfg.rocket_features} MiniRocket-style features computed in the model "
            "(harvit.features.rocket)"]] if cfg.rocket_features else []),
        *([["images", "off (--no-images): the encoder does not run"]] if not cfg.images else []),
        ["images", f"mode `{cfg.mode}`, encodings `{cfg.encodings}`, {cfg.img_size} px, "
                   f"scaling {cfg.scaling} ({cfg.scale_range})"],
        ["augmentation", augmentation(cfg)],
        ["optimiser", f"AdamW lr {cfg.lr:g} (min {cfg.min_lr:g}), weight decay "
                      f"{cfg.weight_decay:g}, warmup {cfg.warmup_epochs:g} epochs, cosine"],
        ["batch", f"{cfg.batch_size} images x {cfg.accum_steps} accumulation"],
        ["epochs", f"{results.epochs_run} run of {cfg.epochs} (early-stopping patience "
                   f"{cfg.early_stopping_patience})"],
        ["loss", f"cross-entropy, label smoothing {cfg.label_smoothing}"],
        ["precision", f"AMP {cfg.amp_dtype}" if cfg.amp and on_cuda else "fp32"],
        ["parameters", f"{results.params_total / 1e6:.2f} M total, "
                       f"{results.params_trainable / 1e6:.3f} M trainable"],
        ["seed", cfg.seed],
    ]
    return ["## Configuration", "", md_table(["setting", "value"], rows, "ll"), "",
            "<details><summary>All settings (<code>config.json</code>)</summary>", "", "```json",
            json.dumps(cfg.to_dict(), indent=2), "```", "", "</details>", ""]


def val_choice(results: TrainingResults) -> str:
    """What validation held out: subjects, windows, share of the training windows, and how they were chosen."""
    cfg, split, choice = results.config, results.split, results.val_choice or {}
    val, train = split.get("val"), split.get("train")
    n_val, n_train = (val.windows if val else 0), (train.windows if train else 0)
    names = choice.get("subjects") or (val.subjects if val else [])
    how = ("named by `--val-subjects`" if choice.get("how") == "--val-subjects" else
           f"chosen (seed {cfg.val_seed}) to come closest to {pct(cfg.val_fraction)} of the training windows")
    return (f"{', '.join(str(n) for n in names)} ({n_val} windows, {pct(n_val / max(1, n_val + n_train))} of the "
            f"training windows; {how})")


def split_section(results: TrainingResults) -> list[str]:
    """The data set, how validation and test were split off, the windows and subjects of each split."""
    cfg, split, classes = results.config, results.split, results.classes
    rows = []
    for k in ("train", "val", "test"):
        s = split.get(k)
        if s:
            rows.append([k, s.windows, len(s.subjects), ", ".join(str(x) for x in s.subjects)])
    notes = [str(n) for n in results.dataset_notes]  # e.g. the data name no subjects
    train = split.get("train")
    if train is not None and train.subjects == [-1]:  # NO_SUBJECT only: windows were split, not people
        how = (f"Validation holds out {pct(cfg.val_fraction)} of the training windows (seed {cfg.seed}, "
               "stratified by class); test is the data set's own split or a stratified share of windows. "
               "**The data name no subjects**: one person's windows can sit on both sides of the validation "
               "split, so validation scores (which pick `best.pt`) are optimistic.")
    else:
        how = (f"Validation holds out whole training subjects {val_choice(results)}; "
               "test is the data set's test subjects. No subject is in two splits.")
    out = ["## Data set and split", "", f"Data set `{cfg.dataset}`. {how}", ""]
    out += [f"> **Note:** {n}" for n in notes] + ([""] if notes else [])
    out += [md_table(["split", "windows", "subjects", "subject ids"], rows, "lrrl"), ""]
    if all(k in split and split[k].class_counts for k in ("train", "val", "test")):
        crow = [[c] + [split[k].class_counts[i] for k in ("train", "val", "test")]
                for i, c in enumerate(classes)]
        out += [md_table(["class", "train", "val", "test"], crow), ""]
    return out


def results_section(results: TrainingResults) -> list[str]:
    """Per-class precision, recall, F1 and support on test, and the confusion matrix."""
    classes = results.classes
    rows = [[c, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", m["support"]]
            for c, m in results.per_class.items()]
    cm = results.confusion_matrix
    cm_rows = [[f"**{c}**"] + [f"**{v}**" if i == j else v for j, v in enumerate(row)]
               for i, (c, row) in enumerate(zip(classes, cm, strict=True))]
    return [
        "## Test results", "",
        md_table(["class", "precision", "recall (accuracy)", "F1", "support"], rows), "",
        "### Confusion matrix", "",
        "Rows: true class; columns: predicted class; the diagonal (bold) is correct.", "",
        md_table(["true \\ predicted"] + classes, cm_rows), "",
    ]


def per_subject_section(results: TrainingResults, baseline: dict[str, Any] | None) -> list[str]:
    """Each test subject's scores (every registered metric of the model, the headline one of each baseline)."""
    ps = results.test_per_subject
    if not ps:
        return []
    models = [] if baseline is None else [m for m in baseline["models"].values() if m.get("per_subject")]
    shown = [m for m in METRICS.values() if all(m.name in v for v in ps["subjects"].values())]
    head = METRICS.get(HEADLINE)
    header = (["subject", "windows"] + [f"model {m.display}" for m in shown]
              + [f"{b['name']} {head.display}" for b in models])
    rows = []
    for s, v in ps["subjects"].items():
        rows.append([s, v["windows"]] + [m.format(v[m.name]) for m in shown]
                    + [head.format(b["per_subject"]["subjects"].get(s, {}).get(HEADLINE, 0.0)) for b in models])
    means = [m.format(ps.get(f"mean_{m.name}")) for m in shown]
    means = [f"**{v}** (sd {100 * ps[f'std_{HEADLINE}']:.1f})" if m.name == HEADLINE else v
             for m, v in zip(shown, means, strict=True)]
    rows.append(["**mean of subjects**", ""] + means + [head.format(b["per_subject"][f"mean_{HEADLINE}"])
                                                         for b in models])
    rows.append(["pooled (all windows)", ps["windows"]]
                + [head.format(ps[f"pooled_{HEADLINE}"]) if m.name == HEADLINE else "" for m in shown]
                + [head.format(b[f"test_{HEADLINE}"]) for b in models])
    return ["## Per-subject results (test)", "",
            "HAR papers often report the mean of per-subject scores; the pooled figure weighs each "
            "window equally.", "", md_table(header, rows), ""]


def timing_section(results: TrainingResults, history: list[dict[str, Any]]) -> list[str]:
    """Device, total, training and feature-cache times, throughput, the mean epoch time, and the run's events."""
    epoch_times = [h["epoch_time_s"] for h in history if "epoch_time_s" in h]
    rows = [
        ["device", f"{results.device} ({results.device_name})"],
        ["total time", f"{results.total_time_s:.1f} s"],
        ["training time (steps only)", f"{results.train_time_s:.1f} s"],
        ["feature cache", f"{results.feature_cache_s:.1f} s" if results.feature_cache_s else "not used"],
        ["throughput", f"{results.samples_per_s:.0f} images/s (training)"],
    ]
    if epoch_times:
        mean = sum(epoch_times) / len(epoch_times)
        rows.append(["epoch time", f"{mean:.1f} s mean over {len(epoch_times)} epochs (with validation)"])
    out = ["## Timings and throughput", "", md_table(["", ""], rows, "ll"), ""]
    if results.events:
        out += ["Events:", ""] + [f"- {e}" for e in results.events] + [""]
    return out


def plots_section(plots: dict[str, Path], titles: dict[str, str], notes: list[str], out_path: Path) -> list[str]:
    """The plots drawn (key -> path; ``titles``: key -> heading), linked relative to the report, and notes on
    those not drawn."""
    out = ["## Plots", ""]
    for key, path in plots.items():
        try:
            rel = path.resolve().relative_to(out_path.parent.resolve()).as_posix()
        except ValueError:
            rel = path.resolve().as_posix()
        out += [f"### {titles[key]}", "", f"![{titles[key]}]({rel})", ""]
    out += [f"- {n}" for n in notes] + ([""] if notes else [])
    return out


def test_model_line(results: TrainingResults) -> str:
    """The one line saying which model the test scores are of: the refit on all training windows, or not."""
    r = results.refit
    if r:
        return (f"**Test model: refit** on training + validation windows ({r.windows}) for {r.epochs} epochs, "
                f"the epoch selected on validation; the validation scores above are of the selection's model "
                f"(selected.pt).")
    return f"**Test model: {results.test_model}** (`--no-refit`)."


def baseline_section(results: TrainingResults, baseline: dict[str, Any] | None, note: str) -> list[str]:
    """The report's "Baseline comparison" section: the verdict, a table of every model fitted (every registered
    metric), which baselines were left out and the command that adds them."""
    out = ["## Baseline comparison", ""]
    name = model_name(results.config)
    if baseline is None:
        return out + [f"**No baseline comparison: the baseline is {note}.** {name[0].upper()}{name[1:]} scores "
                      f"{pct(results.test[HEADLINE])} test accuracy.", ""]
    n = results.test_windows
    k = len(results.classes) or None

    def ci(acc: float) -> str:
        if not n:
            return "-"
        lo, hi = wilson_interval(round(acc * n), n)
        return f"{100 * lo:.1f}-{pct(hi)}"

    def scores(record: dict[str, Any], y: list[int] | None, pred: list[int] | None) -> list[str]:
        return [m.format(metric_value(record, m, "test_", y, pred, k)) for m in METRICS.values()]

    paired = paired_comparisons(results, baseline)
    best_key = strongest(baseline)
    head = METRICS.get(HEADLINE)
    ours = [f"**{m.format(v)}**" if m.name == HEADLINE else m.format(v)
            for m, v in ((m, results.metric(m.name)) for m in METRICS.values())]
    rows = [[f"**{name} (this run)**", head.format(results.best_val_acc), *ours,
             ci(results.test[HEADLINE]), "", f"{results.train_time_s:.1f} s"]]
    for key, m in baseline["models"].items():
        p = f"{paired[key]['verdict']} ({p_value(paired[key]['p_value'])})" if paired else "-"
        cpu = f" ({m['fit_cpu_s']:.0f} CPU s)" if m.get("fit_cpu_s") is not None else ""
        rows.append([m["name"] + (" (strongest)" if key == best_key else ""), head.format(m[f"val_{HEADLINE}"]),
                     *scores(m, baseline.get("test_y_true"), m.get("test_pred")), ci(m[f"test_{HEADLINE}"]), p,
                     f"{m['fit_time_s']:.1f} s{cpu}"])
    stride = baseline.get("train_stride")
    windows = f"stride {stride}" if stride else "the data set's own stride"
    refit = ("then refitted on training + validation windows for the test (as the model's refit)"
             if baseline.get("refit") else "tested as fitted on the training windows")
    return out + [
        verdict(results, baseline), "",
        md_table(["model", f"val {head.display}", *(f"test {m.display}" for m in METRICS.values()),
                  "test 95% CI (Wilson)", "harvit against it (McNemar)", "fit / train time"], rows), "",
        f"Baselines: {baseline_wording(baseline)}. All fitted on the same training windows ({windows}) and subjects "
        f"with the validation subjects held out (the ridge penalty chosen on them), {refit}; the strongest is the "
        f"best on validation. {note}.", "",
        *left_out_lines(baseline),
    ]


def baseline_wording(baseline: dict[str, Any]) -> str:
    """``logistic-regression on 300 hand-made statistics per window; MiniRocket (aeon) on the raw windows``:
    the fitted baselines grouped by what they read (from the registry)."""
    reads = {"statistics": f"on {baseline.get('n_features', '?')} hand-made statistics per window",
             "series": "on the raw windows"}
    groups: dict[str, list[str]] = {r: [] for r in READS}
    for key, m in baseline["models"].items():
        spec = BASELINES.get(key) if key in BASELINES else None
        groups[spec.reads if spec else "series"].append(m["name"] + (f" ({spec.needs})" if spec and spec.needs
                                                                      else ""))
    return "; ".join(f"{', '.join(names)} {reads[r]}" for r, names in groups.items() if names)


def left_out_lines(baseline: dict[str, Any]) -> list[str]:
    """Which registered baselines were not fitted (their cost tier, or a missing package) and the command that
    adds them: ``harvit baseline --run RUN --baseline-set all`` (cached), then ``harvit report RUN``."""
    left = baseline.get("left_out") or {}
    skipped = baseline.get("skipped") or {}
    out = []
    if left:
        out += [f"**Left out:** {'; '.join(f'{display_name(k)}: {v}' for k, v in left.items())}. "
                "`harvit baseline --run RUN --baseline-set all` fits them (cached); `harvit report RUN` then "
                "includes them.", ""]
    if skipped:
        out += [f"**Skipped:** {'; '.join(f'{display_name(k)}: {v}' for k, v in skipped.items())}.", ""]
    return out
