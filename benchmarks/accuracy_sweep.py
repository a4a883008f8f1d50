"""Accuracy sweep: train variants of a preset over several seeds, with the built-in baseline beside each.

Model selection reads only validation accuracy (held-out training subjects); test accuracy is
reported for the record. Writes one JSON with every run and prints a markdown table.

    HARVIT_DATA_DIR=../shared/data python benchmarks/accuracy_sweep.py --dataset hapt6 --preset cpu \
        --seeds 0,1,2 --variant base '{}' --variant gadf '{"encodings": "gasf,gadf"}' --json sweep.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from harvit.config import resolve
from harvit.data import load_dataset
from harvit.evaluation.baseline import run_baseline
from harvit.training import train
from harvit.utils.atomic import write_json
from harvit.utils.machine import describe_machine, machine_info


def run(dataset: str, preset: str, variants: list[tuple[str, dict[str, Any]]], seeds: list[int],
        out_dir: Path, json_path: Path | None, minirocket: bool = True) -> list[dict[str, Any]]:
    data: dict[int | None, Any] = {}  # loaded windows per training stride
    baselines: dict[tuple[int, int | None], dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    for name, overrides in variants:
        for seed in seeds:
            explicit = {"preset": preset, "dataset": dataset, "seed": seed, "progress": False, "tensorboard": False,
                        "output_dir": str(out_dir), "run_name": f"{name}-s{seed}", **overrides}
            cfg, _ = resolve(explicit, cuda_available=False)
            stride = cfg.train_stride_or_none
            if stride not in data:
                data[stride] = load_dataset(dataset, train_stride=stride)
            ds = data[stride]
            if (seed, stride) not in baselines:  # the baseline of the same run: same windows, same split
                baselines[seed, stride] = run_baseline(dataset, seed=cfg.val_seed, windows=ds, train_stride=stride,
                                                       minirocket=minirocket)
            t0 = time.perf_counter()
            res = train(cfg, dataset=ds)
            b = baselines[seed, stride]
            rows.append({
                "variant": name, "overrides": overrides, "seed": seed, "val_acc": res.best_val_acc,
                "test_acc": res.test["accuracy"], "test_macro_f1": res.test["macro_f1"],
                "test_subject_mean_acc": res.test_per_subject["mean_accuracy"],
                "best_epoch": res.best_epoch, "time_s": round(time.perf_counter() - t0, 1),
                "baseline": {k: {"val_acc": v["val_accuracy"], "test_acc": v["test_accuracy"],
                                 "test_macro_f1": v["test_macro_f1"]} for k, v in b["models"].items()},
                "machine": machine_info(),
            })
            print(json.dumps(rows[-1]), flush=True)
            if json_path:
                write_json(json_path, rows)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    out = ["| variant | seeds | val acc | test acc | test macro-F1 | time s | LR test acc | MiniRocket test acc |",
           "|---|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["variant"] for r in rows):
        rs = [r for r in rows if r["variant"] == name]

        def ms(key: str, rs: list[dict[str, Any]] = rs) -> str:
            v = [r[key] * (100 if key != "time_s" else 1) for r in rs]
            return f"{statistics.mean(v):.2f} ± {statistics.stdev(v):.2f}" if len(v) > 1 else f"{v[0]:.2f}"

        def base(key: str, rs: list[dict[str, Any]] = rs) -> str:
            v = [r["baseline"].get(key, {}).get("test_acc") for r in rs]
            return f"{100 * statistics.mean(v):.2f}" if all(x is not None for x in v) else "n/a"

        out.append(f"| {name} | {len(rs)} | {ms('val_acc')} | {ms('test_acc')} | {ms('test_macro_f1')} | "
                   f"{ms('time_s')} | {base('logreg')} | {base('minirocket')} |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="hapt6")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--variant", nargs=2, action="append", metavar=("NAME", "JSON"), default=None)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--out-dir", type=Path, default=None)
    p.add_argument("--no-minirocket", action="store_true", help="baselines without MiniRocket (faster)")
    a = p.parse_args()
    variants = [(n, json.loads(j)) for n, j in (a.variant or [("base", "{}")])]
    seeds = [int(s) for s in a.seeds.split(",")]
    out_dir = a.out_dir or Path(tempfile.mkdtemp(prefix="harvit-sweep-"))
    print(f"machine: {describe_machine()}", flush=True)
    rows = run(a.dataset, a.preset, variants, seeds, out_dir, a.json, minirocket=not a.no_minirocket)
    print(table(rows))
    print(f"machine: {describe_machine()}")


if __name__ == "__main__":
    main()
