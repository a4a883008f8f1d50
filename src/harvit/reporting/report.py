"""``report.md`` and ``plots/`` of a finished run folder.

:func:`create_training_report` reads ``training_results.json``, ``metrics.jsonl`` and
``config.json``, draws the plots (:mod:`harvit.reporting.plots`), runs the built-in baseline on the
same data set, windows, seed and validation fraction once (cached as ``baseline.json`` in the run
folder; ``--no-baselines`` skips it) and writes a GitHub-readable markdown report. Its verdict
(:mod:`harvit.reporting.verdict`) names the model by its branches and compares it with the strongest
baseline (best validation accuracy) by a paired test on the same test windows (McNemar's exact test)
with a Wilson 95% interval for each accuracy: "ahead" or "behind" only when p < 0.05, else "level";
a sibling run without a branch (an ablation) says which branch carried the result.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import harvit.data
from harvit.config import Config
from harvit.evaluation.baseline import BASELINE_VERSION, run_baseline
from harvit.models.loading import load_trained
from harvit.reporting import plots as viz
from harvit.reporting.markdown import md_table, pct
from harvit.reporting.plots import load_history
from harvit.reporting.verdict import ablation_sentence, baseline_section, model_name, verdict
from harvit.utils.atomic import write_text
from harvit.utils.errors import HarvitError

if TYPE_CHECKING:
    from harvit.data import Dataset

BASELINE_FILE = "baseline.json"
PLOTS = {
    "training_history": ("training_history.png", "Loss and accuracy per epoch"),
    "lr_schedule": ("lr_schedule.png", "Learning-rate schedule"),
    "confusion_matrix": ("confusion_matrix.png", "Confusion matrix (test)"),
    "per_class_accuracy": ("per_class_accuracy.png", "Per-class accuracy (test)"),
    "per_subject_accuracy": ("per_subject_accuracy.png", "Per-subject accuracy (test)"),
    "encoded_images": ("encoded_images.png", "What the model sees: encoded test windows per class"),
}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarvitError(f"{path} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HarvitError(f"{path}: not readable JSON ({e})") from None


# ---------------------------------------------------------------------------------------------
# Inputs: the data set (lazily) and the cached baseline
# ---------------------------------------------------------------------------------------------
@dataclass
class _Data:
    """Loads the run's data set at most once; remembers why it could not."""

    config: dict[str, Any]
    results: dict[str, Any]
    given: Dataset | None = None
    loaded: Dataset | None = None
    problem: str | None = None
    tried: bool = False

    def get(self) -> Dataset | None:
        if self.tried:
            return self.loaded
        self.tried = True
        try:
            if self.given is not None:
                ds = self.given
            else:
                ds = harvit.data.load_run_dataset(self.config)
        except HarvitError as e:
            self.problem = f"the data set could not be loaded ({e})"
            return None
        recorded = self.results.get("split", {}).get("test", {})
        if list(ds.test.classes) != list(self.results["classes"]) or (
                recorded and (len(ds.test) != recorded.get("windows")
                              or ds.test.subjects() != recorded.get("subjects"))):
            self.problem = (f"the data set loaded now ({getattr(ds, 'name', '?')}: {len(ds.test)} test "
                            "windows) is not the one this run was trained on")
            return None
        self.loaded = ds
        return ds


def baseline_matches(saved: dict[str, Any], dataset: str, seed: int, val_fraction: float,
                     train_stride: int | None = None, val_subjects: list[int] | None = None,
                     refit: bool = True) -> bool:
    """Whether a cached baseline result was made with these settings and the current feature set."""
    return (saved.get("dataset") == dataset and saved.get("seed") == seed
            and saved.get("val_fraction") == val_fraction and saved.get("version") == BASELINE_VERSION
            and saved.get("train_stride") == train_stride and (saved.get("val_subjects") or None) == val_subjects
            and saved.get("refit", True) == refit)


def load_or_run_baseline(run: Path, data: _Data) -> tuple[dict[str, Any] | None, str]:
    """The run's ``baseline.json`` when it matches the run's settings, else a fresh fit (then cached).

    Returns:
        (baseline result or None, a note on where it came from or why it is missing).
    """
    cfg = data.config
    name = data.given.name if data.given is not None else cfg["dataset"]
    seed = int(cfg["seed"] if cfg.get("split_seed") is None else cfg["split_seed"])
    frac = float(cfg["val_fraction"])
    stride = cfg.get("train_stride") or None
    tokens = [v.strip() for v in str(cfg.get("val_subjects") or "").split(",") if v.strip()]
    val_subjects = [int(v) if v.lstrip("-").isdigit() else v for v in tokens] or None  # names or ids
    refit = cfg.get("refit", True) is not False  # the baselines are refitted on train + val as the model is
    path = run / BASELINE_FILE
    if path.is_file():
        try:
            saved = _read_json(path)
        except HarvitError:
            saved = {}
        if isinstance(saved, dict) and baseline_matches(saved, name, seed, frac, stride, val_subjects, refit):
            return saved, f"cached in `{BASELINE_FILE}`"
    ds = data.get()
    if ds is None:
        return None, f"not available: {data.problem}"
    result = run_baseline(name, seed=seed, val_fraction=frac, json_path=path, windows=ds, train_stride=stride,
                          val_subjects=val_subjects, refit=refit)
    if result.get("cached"):
        return result, f"read from the baseline cache (`{result['cache_file']}`) and copied to `{BASELINE_FILE}`"
    return result, f"fitted now in {result['total_time_s']:.1f} s and cached in `{BASELINE_FILE}`"


# ---------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------
def make_plots(run: Path, results: dict[str, Any], baseline: dict[str, Any] | None, data: _Data
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

    classes = list(results["classes"])
    attempt("training_history", lambda p: viz.plot_training_history(run, p))
    attempt("lr_schedule", lambda p: viz.plot_lr_schedule(run, p, config=results.get("config")))
    cm = results["confusion_matrix"]
    attempt("confusion_matrix", lambda p: viz.plot_confusion_matrices(cm, classes, p))
    reference = None
    if baseline is not None:
        reference = {m["name"]: m["per_class_accuracy"] for m in baseline["models"].values()}
    attempt("per_class_accuracy", lambda p: viz.plot_per_class_accuracy(results["per_class_accuracy"], p,
                                                                         reference))
    ps = (results.get("test_per_subject") or {}).get("subjects")
    if ps:
        ref_s = None if baseline is None else {m["name"]: m["per_subject"]["subjects"]
                                               for m in baseline["models"].values() if m.get("per_subject")}
        attempt("per_subject_accuracy", lambda p: viz.plot_per_subject_accuracy(ps, p, ref_s))

    def encoded(p: Path) -> Path:
        ds = data.get()
        if ds is None:
            raise HarvitError(data.problem or "no data")

        tm = load_trained(run, "cpu")
        return viz.plot_encoded_images(tm.model, ds.test, p, per_class=2)

    attempt("encoded_images", encoded)
    return made, notes


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------
def _augmentation(cfg: dict[str, Any]) -> str:
    """One line for the report's settings table, from a saved config dict (older runs: defaults)."""
    cfg = {**Config().to_dict(), **cfg}
    if not cfg["augment"]:
        return "off"
    rot = float(cfg["augment_rotation"])
    axis = cfg["augment_axis"]
    turn = "no rotation" if rot <= 0 else (
        f"rotation up to {rot:g} deg about a random axis" if axis == "any" else
        f"roll up to +-{rot:g} deg about x for lying windows" if axis == "lying" else
        f"rotation up to +-{rot:g} deg about {axis}")
    return (f"on: {turn}, magnitude x(1 +- {cfg['augment_scale']:g}), shift up to "
            f"{cfg['augment_shift']:g} of the window, jitter {cfg['augment_jitter']:g} std; "
            "statistics recomputed on the augmented window")


def _config_section(cfg: dict[str, Any], results: dict[str, Any]) -> list[str]:
    head = "none (linear)" if not str(cfg.get("hidden_dims", "")).strip() else cfg["hidden_dims"]
    on_cuda = str(results.get("device", "")).startswith("cuda")
    vit_shape = ", ".join(f"{k.replace('_', ' ')} {cfg[k]}" for k in ("patch_size", "embed_dim", "depth",
                                                                         "num_heads") if cfg.get(k))
    rows = [
        ["preset", cfg.get("preset")],
        ["encoder", f"`{cfg['encoder']}`" + (f" ({vit_shape})" if vit_shape else "")],
        ["weights", "pretrained" if cfg.get("pretrained") or cfg.get("pretrained_path") else "random init"],
        ["encoder training", "frozen (head only)" if cfg.get("freeze_encoder") else "fine-tuned"],
        ["head", f"MLP hidden {head}, dropout {cfg.get('dropout')}"],
        *([["window statistics", "on: the head also reads the baseline's per-window statistics"
            if cfg["window_stats"] else "off: the head reads image features only"]] if "window_stats" in cfg else []),
        *([["convolution features", f"{cfg['rocket_features']} MiniRocket-style features computed in the model "
            "(harvit.features.rocket)"]] if cfg.get("rocket_features") else []),
        *([["images", "off (--no-images): the encoder does not run"]] if cfg.get("images") is False else []),
        ["images", f"mode `{cfg['mode']}`, encodings `{cfg['encodings']}`, {cfg['img_size']} px, "
                   f"scaling {cfg.get('scaling')} ({cfg.get('scale_range')})"],
        ["augmentation", _augmentation(cfg)],
        ["optimiser", f"AdamW lr {cfg['lr']:g} (min {cfg.get('min_lr', 0):g}), weight decay "
                      f"{cfg.get('weight_decay'):g}, warmup {cfg.get('warmup_epochs'):g} epochs, cosine"],
        ["batch", f"{cfg['batch_size']} images x {cfg.get('accum_steps', 1)} accumulation"],
        ["epochs", f"{results.get('epochs_run')} run of {cfg['epochs']} (early-stopping patience "
                   f"{cfg.get('early_stopping_patience')})"],
        ["loss", f"cross-entropy, label smoothing {cfg.get('label_smoothing')}"],
        ["precision", f"AMP {cfg.get('amp_dtype')}" if cfg.get("amp") and on_cuda else "fp32"],
        ["parameters", f"{results.get('params_total', 0) / 1e6:.2f} M total, "
                       f"{results.get('params_trainable', 0) / 1e6:.3f} M trainable"],
        ["seed", cfg.get("seed")],
    ]
    return ["## Configuration", "", md_table(["setting", "value"], rows, "ll"), "",
            "<details><summary>All settings (<code>config.json</code>)</summary>", "", "```json",
            json.dumps(cfg, indent=2), "```", "", "</details>", ""]


def _val_choice(results: dict[str, Any], cfg: dict[str, Any]) -> str:
    """What validation held out: subjects, windows, share of the training windows, and how they were chosen."""
    split, choice = results.get("split", {}), results.get("val_choice") or {}
    n_val, n_train = split.get("val", {}).get("windows", 0), split.get("train", {}).get("windows", 0)
    names = choice.get("subjects") or split.get("val", {}).get("subjects", [])
    seed = cfg["seed"] if cfg.get("split_seed") is None else cfg["split_seed"]
    how = ("named by `--val-subjects`" if choice.get("how") == "--val-subjects" else
           f"chosen (seed {seed}) to come closest to {pct(cfg['val_fraction'])} of the training windows")
    return (f"{', '.join(str(n) for n in names)} ({n_val} windows, {pct(n_val / max(1, n_val + n_train))} of the "
            f"training windows; {how})")


def _split_section(cfg: dict[str, Any], results: dict[str, Any]) -> list[str]:
    split = results.get("split", {})
    classes = list(results["classes"])
    rows = []
    for k in ("train", "val", "test"):
        s = split.get(k)
        if s:
            rows.append([k, s["windows"], len(s["subjects"]), ", ".join(str(x) for x in s["subjects"])])
    notes = [str(n) for n in results.get("dataset_notes") or []]  # e.g. the data name no subjects
    if split.get("train", {}).get("subjects") == [-1]:  # NO_SUBJECT only: windows were split, not people
        how = (f"Validation holds out {pct(cfg['val_fraction'])} of the training windows (seed {cfg['seed']}, "
               "stratified by class); test is the data set's own split or a stratified share of windows. "
               "**The data name no subjects**: one person's windows can sit on both sides of the validation "
               "split, so validation scores (which pick `best.pt`) are optimistic.")
    else:
        how = (f"Validation holds out whole training subjects {_val_choice(results, cfg)}; "
               "test is the data set's test subjects. No subject is in two splits.")
    out = ["## Data set and split", "", f"Data set `{cfg['dataset']}`. {how}", ""]
    out += [f"> **Note:** {n}" for n in notes] + ([""] if notes else [])
    out += [md_table(["split", "windows", "subjects", "subject ids"], rows, "lrrl"), ""]
    if all(split.get(k, {}).get("class_counts") for k in ("train", "val", "test")):
        crow = [[c] + [split[k]["class_counts"][i] for k in ("train", "val", "test")]
                for i, c in enumerate(classes)]
        out += [md_table(["class", "train", "val", "test"], crow), ""]
    return out


def _results_section(results: dict[str, Any]) -> list[str]:
    classes = list(results["classes"])
    rows = [[c, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", m["support"]]
            for c, m in results["per_class"].items()]
    cm = results["confusion_matrix"]
    cm_rows = [[f"**{c}**"] + [f"**{v}**" if i == j else v for j, v in enumerate(row)]
               for i, (c, row) in enumerate(zip(classes, cm, strict=True))]
    return [
        "## Test results", "",
        md_table(["class", "precision", "recall (accuracy)", "F1", "support"], rows), "",
        "### Confusion matrix", "",
        "Rows: true class; columns: predicted class; the diagonal (bold) is correct.", "",
        md_table(["true \\ predicted"] + classes, cm_rows), "",
    ]


def _per_subject_section(results: dict[str, Any], baseline: dict[str, Any] | None) -> list[str]:
    ps = results.get("test_per_subject")
    if not ps:
        return []
    models = [] if baseline is None else [m for m in baseline["models"].values() if m.get("per_subject")]
    header = ["subject", "windows", "model accuracy", "model macro-F1"] + [f"{m['name']} accuracy" for m in models]
    rows = []
    for s, v in ps["subjects"].items():
        rows.append([s, v["windows"], pct(v["accuracy"]), f"{v['macro_f1']:.3f}"]
                    + [pct(m["per_subject"]["subjects"].get(s, {}).get("accuracy", 0.0)) for m in models])
    rows.append(["**mean of subjects**", "", f"**{pct(ps['mean_accuracy'])}** (sd {100 * ps['std_accuracy']:.1f})",
                 f"{ps['mean_macro_f1']:.3f}"] + [pct(m["per_subject"]["mean_accuracy"]) for m in models])
    rows.append(["pooled (all windows)", ps["windows"], pct(ps["pooled_accuracy"]), ""]
                + [pct(m["test_accuracy"]) for m in models])
    return ["## Per-subject results (test)", "",
            "HAR papers often report the mean of per-subject accuracies; the pooled figure weighs each "
            "window equally.", "", md_table(header, rows), ""]


def _timing_section(results: dict[str, Any], history: list[dict[str, Any]]) -> list[str]:
    epoch_times = [h["epoch_time_s"] for h in history if "epoch_time_s" in h]
    rows = [
        ["device", f"{results.get('device')} ({results.get('device_name')})"],
        ["total time", f"{results.get('total_time_s', 0):.1f} s"],
        ["training time (steps only)", f"{results.get('train_time_s', 0):.1f} s"],
        ["feature cache", f"{results['feature_cache_s']:.1f} s" if results.get("feature_cache_s") else "not used"],
        ["throughput", f"{results.get('samples_per_s', 0):.0f} images/s (training)"],
    ]
    if epoch_times:
        mean = sum(epoch_times) / len(epoch_times)
        rows.append(["epoch time", f"{mean:.1f} s mean over {len(epoch_times)} epochs (with validation)"])
    out = ["## Timings and throughput", "", md_table(["", ""], rows, "ll"), ""]
    if results.get("events"):
        out += ["Events:", ""] + [f"- {e}" for e in results["events"]] + [""]
    return out


def _plots_section(run: Path, plots: dict[str, Path], notes: list[str], out_path: Path) -> list[str]:
    out = ["## Plots", ""]
    for key, path in plots.items():
        try:
            rel = path.resolve().relative_to(out_path.parent.resolve()).as_posix()
        except ValueError:
            rel = path.resolve().as_posix()
        out += [f"### {PLOTS[key][1]}", "", f"![{PLOTS[key][1]}]({rel})", ""]
    out += [f"- {n}" for n in notes] + ([""] if notes else [])
    return out


def _test_model_line(results: dict[str, Any]) -> str:
    """The one line saying which model the test scores are of: the refit on all training windows, or not."""
    r = results.get("refit")
    if r:
        return (f"**Test model: refit** on training + validation windows ({r['windows']}) for {r['epochs']} epochs, "
                f"the epoch selected on validation; the validation scores above are of the selection's model "
                f"(selected.pt).")
    return f"**Test model: {results['test_model']}** (`--no-refit`)."


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
    if not (run / "training_results.json").is_file():
        raise HarvitError(f"{run}: no training_results.json; the run has not finished (resume it with "
                          "`harvit train ... --resume`)")
    results = _read_json(run / "training_results.json")
    cfg = results.get("config") or _read_json(run / "config.json")
    history: list[dict[str, Any]] = []
    if (run / "metrics.jsonl").is_file():
        history, _ = load_history(run / "metrics.jsonl")
    data = _Data(cfg, results, given=dataset)
    if baseline is None:
        baseline = cfg.get("baselines", True) is not False
    base, base_note = (None, "turned off (--no-baselines)") if not baseline else load_or_run_baseline(run, data)
    out_path = Path(out)
    if not out_path.is_absolute():
        out_path = run / out_path
    plots, notes = make_plots(run, results, base, data)

    lines = [
        f"# Training report: `{run.name}`", "",
        f"{model_name(cfg)}, encoder {cfg['encoder']} on `{cfg['dataset']}`, mode `{cfg['mode']}`, "
        f"encodings `{cfg['encodings']}`, {cfg['img_size']} px; generated {time.strftime('%Y-%m-%d %H:%M')}.", "",
        "## Summary", "",
        md_table(["metric", "value"], [
            ["test accuracy", f"**{pct(results['test_accuracy'])}**"],
            ["test macro-F1", f"{results['test_macro_f1']:.3f}"],
            *([["test balanced accuracy", pct(results["test_balanced_accuracy"])]]
              if results.get("test_balanced_accuracy") is not None else []),
            *([["test accuracy, mean of subjects", pct(results["test_per_subject"]["mean_accuracy"])]]
              if results.get("test_per_subject") else []),
            ["test view accuracy", pct(results.get("test_view_accuracy", 0.0))],
            ["test loss", f"{results.get('test_loss', 0.0):.4f}"],
            ["best validation accuracy", f"{pct(results['best_val_acc'])} (epoch {results['best_epoch']} of "
                                         f"{results['epochs_run']})"],
            *([["validation balanced accuracy, macro-F1 (that epoch)",
                f"{pct(results['best_val_balanced_accuracy'])}, {results['best_val_macro_f1']:.3f}"]]
              if results.get("best_val_balanced_accuracy") is not None else []),
        ]), "",
        *([_test_model_line(results), ""] if results.get("test_model") else []),
    ]
    if base is not None:
        lines += [verdict(results, base, cfg), ""]
    else:
        lines += [f"**No baseline comparison: the baseline is {base_note}.**", ""]
    carried = ablation_sentence(run, cfg, results)
    if carried:
        lines += [carried, ""]
    lines += _config_section(cfg, results)
    lines += _split_section(cfg, results)
    lines += _results_section(results)
    lines += _per_subject_section(results, base)
    lines += baseline_section(results, base, base_note, cfg)
    lines += _timing_section(results, history)
    lines += _plots_section(run, plots, notes, out_path)
    lines += [f"_Report written by `harvit report` in {time.perf_counter() - t0:.1f} s._", ""]
    write_text(out_path, "\n".join(lines))
    return out_path
