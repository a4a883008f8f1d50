"""Real-data benchmark (issue 19 item 3): harvit's cpu preset against the strongest baseline, per real data set.

For each data set found (hapt6, hapt12, ``$HARVIT_DATA_DIR/uea/Epilepsy``, aeon's bundled BasicMotions, and
the public data sets fetched under ``--extra DIR`` / ``$HARVIT_EXTRA_DATA``, described in docs/results.md)
it runs, as subprocesses of ``python -m harvit`` (so it runs on a GPU machine too with ``PYTHONPATH=src``):

1. ``harvit train --preset cpu --seed 42`` with the defaults, plus only the flags the data set's layout
   needs (each stated with why in :data:`SPECS`); the run's report fits the baselines on the same windows
   (``baseline.json`` in the run folder; ``harvit baseline --run`` when the report did not);
2. the same with ``--no-images`` (the ablation: window statistics + convolution features alone);

and writes one markdown table and a JSON (atomically) to ``--out``: windows, windowing, accuracy,
macro-F1 and balanced accuracy of harvit's model, the strongest baseline (by validation accuracy where the
baseline kept it, else by test accuracy, and the table says which) with its scores, McNemar's exact test
of harvit against it on the same test windows, and the images ablation. A data set that fails keeps its
row with the error line. Finished runs are reused (delete a run folder to redo it).

    HARVIT_DATA_DIR=../shared/data python benchmarks/real_datasets.py --extra /data/extdata --out /tmp/real
    python benchmarks/real_datasets.py --only epilepsy,basicmotions --quick --threads 1   # a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from harvit.evaluation.significance import compare
from harvit.utils.atomic import write_json, write_text, write_with
from harvit.utils.machine import describe_machine, machine_info

SEED = 42
MISSING = "-"


@dataclass(frozen=True)
class Spec:
    """One real data set: where it is, the flags its layout needs, and the windowing used.

    Attributes:
        name: the table's name (``--only`` takes it).
        where: ``builtin:NAME``, ``data:REL`` (under ``$HARVIT_DATA_DIR``), ``extra:REL`` (under ``--extra``)
            or ``aeon:basic_motions`` (written to an ``.npz`` under the output folder).
        flags: ``(flag, value or None, why)``: only what the layout needs.
        optional: the same, given only when this harvit has the flag (newer own-data options).
        windowing: the windows used and why.
        source: where the data come from (docs/results.md has the full record).
    """

    name: str
    where: str
    windowing: str
    source: str
    flags: tuple[tuple[str, str | None, str], ...] = ()
    optional: tuple[tuple[str, str | None, str], ...] = ()


HAPT_WINDOWS = ("HAPT's own: 2.56 s (128 samples at 50 Hz), test windows at 50% overlap (UCI HAR's protocol); "
                "training stride 32 (the cpu preset)")
SPECS: tuple[Spec, ...] = (
    Spec("hapt6", "builtin:hapt6", HAPT_WINDOWS, "UCI HAPT v2.1, 6 activities (../shared/data/README.md)"),
    Spec("hapt12", "builtin:hapt12", HAPT_WINDOWS + "; windows spanning two labels dropped (transitions are short)",
         "UCI HAPT v2.1, 6 activities + 6 transitions"),
    Spec("epilepsy", "data:uea/Epilepsy", "the archive's cases, whole (206 samples at 16 Hz, 12.9 s): "
         "a case is one labelled execution; the archive's own train/test split",
         "UEA archive Epilepsy (.ts pair, ../shared/data/README.md)"),
    Spec("basicmotions", "aeon:basic_motions", "the archive's cases, whole (100 samples at 10 Hz, 10 s); "
         "aeon's own train/test split", "UEA archive BasicMotions, bundled with aeon (written to an .npz)"),
    Spec("chest_acc", "extra:chest_acc",
         "2.56 s at 52 Hz (133 samples), no overlap: activities last minutes, so the default length keeps every "
         "class; without overlap the 15 people give ~14,500 windows (hapt6's size) instead of ~29,000",
         "UCI 'Activity Recognition from Single Chest-Mounted Accelerometer' (Casale et al.), one CSV per person",
         flags=(("--columns", "sample,acc_x,acc_y,acc_z,label", "the CSVs have no header row"),
                ("--channels", "acc_x,acc_y,acc_z", "the first column is a sample counter, not a signal"),
                ("--rate", "52", "no time column; the data set's README gives 52 Hz"),
                ("--overlap", "0", "minutes-long activities: non-overlapping windows keep the run at hapt6's size")),
         optional=(("--subject-from", "file", "one file per participant and no subject column"),)),
    Spec("wisdm2019_watch", "extra:wisdm2019_watch_accel/raw/watch/accel",
         "10 s at 20 Hz (200 samples), no overlap: the data set's authors classify 10 s windows, each activity "
         "lasts 3 minutes, and the default 2.56 s at 50% overlap would give ~113,000 windows (8x hapt6)",
         "UCI WISDM Smartphone and Smartwatch Activity and Biometrics (2019), watch accelerometer, "
         "one file per subject (user, activity, timestamp in ns since boot, x, y, z;)",
         flags=(("--window-s", "10", "the authors' window length"), ("--overlap", "0", "see the windowing"))),
)
"""Every data set of the benchmark, in table order. WISDM's layout needs no flag to load (issue 19's goal:
``harvit data info PATH`` reads it at 20 Hz); the two given choose the windowing only."""


# ---------------------------------------------------------------------------------------------
# Running harvit


@dataclass
class Harvit:
    """How to call ``python -m harvit``: the environment (``PYTHONPATH`` with this checkout's ``src``)."""

    threads: int
    env: dict[str, str] = field(default_factory=dict)
    train_help: str = ""

    @classmethod
    def make(cls, threads: int) -> Harvit:
        src = str(Path(__file__).resolve().parents[1] / "src")
        path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "PYTHONPATH": path, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": str(threads),
               "MKL_NUM_THREADS": str(threads)}
        h = cls(threads, env)
        h.train_help = h.call(["train", "--help"], None).stdout
        return h

    def has(self, flag: str) -> bool:
        """Whether ``harvit train`` takes ``flag`` (newer options are added only where they exist)."""
        return f"{flag} " in self.train_help or f"{flag}\n" in self.train_help or f"{flag}]" in self.train_help

    def call(self, args: list[str], log_path: Path | None) -> subprocess.CompletedProcess:
        """Run ``python -m harvit ARGS``; stdout and stderr also go to ``log_path``."""
        proc = subprocess.run([sys.executable, "-m", "harvit", *args], env=self.env, capture_output=True, text=True)
        if log_path is not None:
            write_text(log_path, f"$ harvit {' '.join(args)}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
                                 f"\n--- exit {proc.returncode}\n")
        return proc


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The one line that says why a harvit command failed."""
    lines = [ln for ln in (proc.stderr + "\n" + proc.stdout).splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith("harvit: error"):
            return ln.removeprefix("harvit: error:").strip()
    return lines[-1].strip() if lines else f"exit {proc.returncode}"


def resolve_dataset(spec: Spec, data_dir: Path | None, extra: Path | None, out: Path) -> tuple[str | None, str]:
    """(the ``--dataset`` value, or None, and why not)."""
    kind, _, rel = spec.where.partition(":")
    if kind == "builtin":
        return rel, ""
    if kind == "aeon":
        return str(basic_motions_npz(out / "data")), ""
    root = data_dir if kind == "data" else extra
    if root is None:
        return None, "not at hand: " + ("$HARVIT_DATA_DIR is not set" if kind == "data"
                                        else "no --extra DIR or $HARVIT_EXTRA_DATA")
    path = root / rel
    return (str(path), "") if path.exists() else (None, f"not at hand: {path} does not exist")


def basic_motions_npz(folder: Path) -> Path:
    """aeon's bundled BasicMotions as an ``.npz`` harvit reads (x [80, 6, 100], its train/test split, 10 Hz)."""
    path = folder / "basic_motions.npz"
    if path.is_file():
        return path
    from aeon.datasets import load_basic_motions

    parts = [load_basic_motions(split=s) for s in ("train", "test")]
    x = np.concatenate([p[0] for p in parts]).astype(np.float32)
    y = np.concatenate([np.asarray(p[1], dtype=str) for p in parts])
    split = np.array(["train"] * len(parts[0][1]) + ["test"] * len(parts[1][1]))
    channels = np.array(["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"])  # the archive's dimension order
    folder.mkdir(parents=True, exist_ok=True)
    write_with(path, lambda f: np.savez(f, x=x, y=y, split=split, channels=channels, rate_hz=np.float64(10.0)))
    return path


def run_dataset(h: Harvit, spec: Spec, dataset: str, out: Path, quick: bool) -> dict[str, Any]:
    """Train harvit (and its report's baselines) and the no-images ablation on one data set.

    Returns:
        dict: flags (given, with why), skipped_flags, results (training_results.json or None), baseline
        (baseline.json or None), ablation (training_results.json of --no-images or None), errors.
    """
    flags = [f for f in spec.flags] + [f for f in spec.optional if h.has(f[0])]
    skipped = [f"{f} ({why}): this harvit has no such flag" for f, _, why in spec.optional if not h.has(f)]
    args = ["--dataset", dataset] + [a for f, v, _ in flags for a in ((f,) if v is None else (f, v))]
    common = ["--preset", "cpu", "--seed", str(SEED), "--threads", str(h.threads), "--output-dir", str(out / "runs"),
              "--no-progress", "--no-tensorboard"] + (["--epochs", "1"] if quick else [])
    every = ["--baseline-set", "all"] if h.has("--baseline-set") else []  # the benchmark fits every baseline
    common += every
    tag = "-quick" if quick else ""
    record: dict[str, Any] = {"flags": [{"flag": f, "value": v, "why": w} for f, v, w in flags],
                              "skipped_flags": skipped, "errors": {}, "results": None, "baseline": None,
                              "ablation": None}
    run = out / "runs" / f"{spec.name}{tag}"
    record["results"] = train_once(h, run, ["train", *common, "--run-name", run.name, *args], out, record, "train")
    if record["results"] is not None:
        if not (run / "baseline.json").is_file():  # no report (or it failed): the baselines of the same run
            proc = h.call(["baseline", "--run", str(run), *every, "--json", str(run / "baseline.json")],
                          out / "logs" / f"{run.name}-baseline.log")
            if proc.returncode:
                record["errors"]["baseline"] = error_line(proc)
        if (run / "baseline.json").is_file():
            record["baseline"] = json.loads((run / "baseline.json").read_text(encoding="utf-8"))
    abl = out / "runs" / f"{spec.name}-noimages{tag}"
    no_report = ["--no-report"] if h.has("--no-report") else []
    record["ablation"] = train_once(h, abl, ["train", *common, "--run-name", abl.name, "--no-images", *no_report,
                                             *args], out, record, "ablation")
    return record


def train_once(h: Harvit, run: Path, args: list[str], out: Path, record: dict[str, Any], what: str
               ) -> dict[str, Any] | None:
    """``harvit train ARGS`` unless ``run`` already holds its results; the results, or None (error recorded)."""
    done = run / "training_results.json"
    if not done.is_file():
        print(f"[{run.name}] harvit {' '.join(args)}", flush=True)
        proc = h.call(args, out / "logs" / f"{run.name}.log")
        if proc.returncode or not done.is_file():
            record["errors"][what] = error_line(proc)
            print(f"[{run.name}] failed: {record['errors'][what]}", flush=True)
            return None
    else:
        print(f"[{run.name}] reusing {done}", flush=True)
    return json.loads(done.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# Summaries and the table (pure functions of the result dicts)


def scores(y_true: list[int] | None, y_pred: list[int] | None, stored: dict[str, Any], prefix: str = "test_"
           ) -> dict[str, float | None]:
    """accuracy, macro_f1, balanced_accuracy: from the per-window predictions when both are given (one
    definition for every model), else the stored ``{prefix}accuracy`` etc. (None where absent)."""
    if y_true is not None and y_pred is not None and len(y_true) == len(y_pred) and len(y_true):
        labels = sorted(set(y_true) | set(y_pred))
        return {"accuracy": float(accuracy_score(y_true, y_pred)),
                "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
                "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred))}

    def get(*keys: str) -> float | None:
        return next((float(stored[k]) for k in keys if stored.get(k) is not None), None)

    return {"accuracy": get(f"{prefix}accuracy", "accuracy"),
            "macro_f1": get(f"{prefix}macro_f1", "macro_f1"),
            "balanced_accuracy": get(f"{prefix}balanced_accuracy", "balanced_accuracy")}


def strongest(baseline: dict[str, Any] | None) -> tuple[str | None, str]:
    """(key of the strongest baseline model, ``"validation"`` or ``"test"``): the best validation accuracy
    where every model kept one (a tie goes to the better test accuracy: the harder bar for harvit), else
    the best test accuracy; (None, "") without models."""
    models = {k: m for k, m in ((baseline or {}).get("models") or {}).items() if isinstance(m, dict)}
    if not models:
        return None, ""
    if all(m.get("val_accuracy") is not None for m in models.values()):
        return max(models, key=lambda k: (models[k]["val_accuracy"], models[k].get("test_accuracy") or 0.0)), \
            "validation"
    tested = {k: m for k, m in models.items() if m.get("test_accuracy") is not None}
    if not tested:
        return None, ""
    return max(tested, key=lambda k: tested[k]["test_accuracy"]), "test"


def windows_of(results: dict[str, Any]) -> dict[str, int | None]:
    """Windows per split (train / val / test) of a run's ``split`` record."""
    split = results.get("split") or {}
    return {k: (split.get(k) or {}).get("windows") for k in ("train", "val", "test")}


def paired(y_true: list[int] | None, pred_a: list[int] | None, pred_b: list[int] | None) -> dict[str, Any] | None:
    """:func:`harvit.evaluation.significance.compare` of A against B, or None without paired predictions."""
    if not y_true or pred_a is None or pred_b is None or not len(y_true) == len(pred_a) == len(pred_b):
        return None
    c = compare(y_true, pred_a, pred_b)
    return {k: c[k] for k in ("b", "c", "p_value", "n", "verdict")}


def summarize(spec: Spec, record: dict[str, Any]) -> dict[str, Any]:
    """One table row (a JSON-ready dict) from :func:`run_dataset`'s record."""
    res, base, abl = record.get("results"), record.get("baseline"), record.get("ablation")
    row: dict[str, Any] = {"dataset": spec.name, "windowing": spec.windowing, "source": spec.source,
                           "flags": record.get("flags", []), "skipped_flags": record.get("skipped_flags", []),
                           "errors": record.get("errors", {}), "note": record.get("note")}
    if res is None:
        return row
    y = res.get("test_y_true")
    row["windows"] = windows_of(res)
    row["harvit"] = scores(y, res.get("test_y_pred"), res)
    row["notes"] = list(res.get("dataset_notes") or [])
    key, chosen_by = strongest(base)
    if key is not None and base is not None:
        m = base["models"][key]
        same = base.get("test_y_true") == y
        row["baseline"] = {"key": key, "name": m.get("name", key), "chosen_by": chosen_by,
                           **scores(y if same else None, m.get("test_pred") if same else None, m)}
        row["paired"] = paired(y, res.get("test_y_pred"), m.get("test_pred")) if same else None
        row["baselines"] = {k: {"name": v.get("name", k), "val_accuracy": v.get("val_accuracy"),
                                **scores(y if same else None, v.get("test_pred") if same else None, v)}
                            for k, v in base["models"].items() if isinstance(v, dict)}
    if abl is not None:
        ya = abl.get("test_y_true")
        row["no_images"] = scores(ya, abl.get("test_y_pred"), abl)
        row["images_paired"] = paired(y, res.get("test_y_pred"), abl.get("test_y_pred")) if ya == y else None
    return row


def pct(v: float | None) -> str:
    return MISSING if v is None else f"{100 * v:.1f}"


def p_text(p: dict[str, Any] | None) -> str:
    if not p:
        return MISSING
    return f"{p['verdict']} (p={p['p_value']:.2g}, {p['b']}/{p['c']})"


def table(rows: list[dict[str, Any]]) -> str:
    """The benchmark's markdown table, one row per data set and a mean row, then each data set's flags."""
    head = ("| data set | windows train/val/test | windowing (why) | harvit acc | macro-F1 | bal. acc | "
            "strongest baseline (chosen by) | its acc | macro-F1 | bal. acc | harvit vs it: McNemar exact "
            "(harvit alone right / it alone right) | without images: acc / macro-F1 | with vs without images |")
    out = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        h, b = r.get("harvit"), r.get("baseline")
        if h is None:
            errs = r.get("errors", {})
            errors = "; ".join(f"{k}: {v}" for k, v in errs.items() if k == "train" or v != errs.get("train"))
            why = f"fails: {errors}" if errors else (r.get("note") or "not run")
            out.append(f"| {r['dataset']} | {MISSING} | {r['windowing']} | {why} |" + f" {MISSING} |" * 9)
            continue
        w = r.get("windows") or {}
        wins = "/".join(MISSING if w.get(k) is None else str(w[k]) for k in ("train", "val", "test"))
        base = MISSING if b is None else f"{b['name']} ({b['chosen_by']})"
        ni = r.get("no_images")
        ni_text = MISSING if ni is None else f"{pct(ni['accuracy'])} / {pct(ni['macro_f1'])}"
        if ni is None and "ablation" in r.get("errors", {}):
            ni_text = f"fails: {r['errors']['ablation']}"
        bs = b or {}
        out.append(f"| {r['dataset']} | {wins} | {r['windowing']} | {pct(h['accuracy'])} | {pct(h['macro_f1'])} | "
                   f"{pct(h['balanced_accuracy'])} | {base} | {pct(bs.get('accuracy'))} | {pct(bs.get('macro_f1'))} | "
                   f"{pct(bs.get('balanced_accuracy'))} | {p_text(r.get('paired'))} | {ni_text} | "
                   f"{p_text(r.get('images_paired'))} |")
    done = [r for r in rows if r.get("harvit") and r.get("baseline")]
    if done:
        def mean(vals: list[float | None]) -> str:
            v = [x for x in vals if x is not None]
            return pct(sum(v) / len(v)) if len(v) == len(vals) else MISSING

        out.append(f"| mean of {len(done)} | | | {mean([r['harvit']['accuracy'] for r in done])} | "
                   f"{mean([r['harvit']['macro_f1'] for r in done])} | "
                   f"{mean([r['harvit']['balanced_accuracy'] for r in done])} | strongest per data set | "
                   f"{mean([r['baseline']['accuracy'] for r in done])} | "
                   f"{mean([r['baseline']['macro_f1'] for r in done])} | "
                   f"{mean([r['baseline']['balanced_accuracy'] for r in done])} | | | |")
    out += ["", "Flags beyond `--preset cpu --seed 42` (each because the layout needs it):", ""]
    for r in rows:
        given = "; ".join(f"`{f['flag']}{'' if f['value'] is None else ' ' + f['value']}` ({f['why']})"
                          for f in r.get("flags", [])) or "none"
        skipped = "".join(f"; not given: {s}" for s in r.get("skipped_flags", []))
        extra = "".join(f"; {n}" for n in r.get("notes", []))
        out.append(f"- {r['dataset']}: {given}{skipped}{extra}")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="", help=f"comma-separated data sets (of {', '.join(s.name for s in SPECS)})")
    p.add_argument("--extra", type=Path, default=os.environ.get("HARVIT_EXTRA_DATA"),
                   help="folder of the fetched public data sets (default: $HARVIT_EXTRA_DATA)")
    p.add_argument("--threads", type=int, default=1, help="harvit --threads and OMP/MKL threads (default: 1)")
    p.add_argument("--quick", action="store_true", help="1 epoch per run: a smoke test, not a result")
    p.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "harvit-real-datasets",
                   help="runs, logs, real_datasets.md and real_datasets.json go here")
    a = p.parse_args(argv)
    names = [s.name for s in SPECS]
    only = [n.strip() for n in a.only.split(",") if n.strip()]
    unknown = [n for n in only if n not in names]
    if unknown:
        p.error(f"--only {','.join(unknown)}: unknown data set; expected some of {', '.join(names)}")
    data_dir = Path(os.environ["HARVIT_DATA_DIR"]) if os.environ.get("HARVIT_DATA_DIR") else None
    extra = Path(a.extra) if a.extra else None
    h = Harvit.make(a.threads)
    rows = []
    stem = "real_datasets" + ("-quick" if a.quick else "")
    for spec in SPECS:
        if only and spec.name not in only:
            continue
        dataset, why = resolve_dataset(spec, data_dir, extra, a.out)
        record = {"note": why} if dataset is None else run_dataset(h, spec, dataset, a.out, a.quick)
        rows.append(summarize(spec, record))
        write_json(a.out / f"{stem}.json", {"seed": SEED, "quick": a.quick, "threads": a.threads, "rows": rows,
                                            "machine": machine_info()})
        write_text(a.out / f"{stem}.md", table(rows) + "\n")
    print(table(rows))
    print(f"machine: {describe_machine()}")
    print(f"\n-> {a.out / (stem + '.md')}, {a.out / (stem + '.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
