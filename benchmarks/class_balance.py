"""Class balance on validation: ``--class-balance none|weights|sampler`` side by side (``--no-refit``).

Reads only the selection phase's validation scores (accuracy, balanced accuracy, macro-F1 of the best
epoch) to choose; the test scores are printed for the record. ``--dataset synthetic-imbalanced`` is a
small made-up set whose rarest class holds about 3% of the windows (tiny model, seconds per run).

    HARVIT_DATA_DIR=../shared/data python benchmarks/class_balance.py --dataset hapt12 --preset cpu \
        --seeds 42 --threads 1
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from harvit.config import CLASS_BALANCES, Config, resolve
from harvit.data import Dataset, Windows
from harvit.training import train

TINY = dict(encoder="vit_tiny_patch16_224", img_size=16, patch_size=8, embed_dim=32, depth=1, num_heads=2,
            mode="stack", encodings="gasf", freeze_encoder=False, epochs=6, batch_size=32, hidden_dims="16",
            lr=3e-3, early_stopping_patience=0, rocket_features=0)


def synthetic_imbalanced(seed: int = 0, n: int = 1200) -> Dataset:
    """5 classes, 40/30/17/10/3% of the windows, 8 subjects (2 for test); class k: a (k+1) Hz tone in noise
    whose amplitude overlaps the neighbours', so rare classes are easy to ignore."""
    rng = np.random.default_rng(seed)
    shares = np.array([0.40, 0.30, 0.17, 0.10, 0.03])
    y = rng.choice(5, size=n, p=shares)
    t = np.arange(128) / 50.0
    x = rng.normal(0.0, 0.6, (n, 3, 128)) + 0.5 * np.sin(2 * np.pi * (y[:, None, None] + 1.0) * t
                                                         + rng.uniform(0, 6.3, (n, 1, 1)))
    subject = rng.integers(1, 9, n)
    w = Windows(x.astype(np.float32), y, subject, ["acc_x", "acc_y", "acc_z"], [f"c{k}" for k in range(5)], 50.0)
    test = np.isin(subject, [2, 5])
    return Dataset("synthetic-imbalanced", w.subset(~test), w.subset(test))


def run(cfg: Config, dataset: Dataset | None, seeds: list[int], out: Path) -> list[dict[str, Any]]:
    rows = []
    for balance in CLASS_BALANCES:
        for seed in seeds:
            c = dataclasses.replace(cfg, class_balance=balance, seed=seed, refit=False, output_dir=str(out),
                                    run_name=f"{balance}_{seed}", progress=False, tensorboard=False)
            r = train(c, dataset=dataset)
            rows.append({"balance": balance, "seed": seed, "val_acc": r.best_val_acc,
                         "val_bal": r.best_val["balanced_accuracy"], "val_f1": r.best_val["macro_f1"],
                         "test_acc": r.test["accuracy"], "test_bal": r.test["balanced_accuracy"],
                         "test_f1": r.test["macro_f1"]})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="synthetic-imbalanced")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--seeds", default="42")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    if a.dataset == "synthetic-imbalanced":
        cfg, ds = Config(**TINY, threads=a.threads, device="cpu"), synthetic_imbalanced()
    else:
        cfg, _ = resolve({"dataset": a.dataset, "preset": a.preset, "threads": a.threads}, cuda_available=False)
        ds = None
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(cfg, ds, seeds, Path(tmp))
    print(f"| {a.dataset} | val acc | val balanced acc | val macro-F1 | test acc | test balanced acc | test macro-F1 |")
    print("|---|---|---|---|---|---|---|")
    for balance in CLASS_BALANCES:
        rs = [r for r in rows if r["balance"] == balance]
        cells = [f"{100 * statistics.mean(r[k] for r in rs):.2f}"
                 for k in ("val_acc", "val_bal", "val_f1", "test_acc", "test_bal", "test_f1")]
        print(f"| {balance} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
