"""The test split never feeds model selection or early stopping."""

import json
from pathlib import Path

import numpy as np
import torch
from helpers_runs import synthetic_dataset, tiny_config
from synth import make_dataset

from harvit.config import Config
from harvit.data.windows import Dataset
from harvit.training import train
from harvit.training.cv import run_cv

TINY = dict(encoder="vit_tiny_patch16_224", img_size=16, patch_size=8, embed_dim=32, depth=1, num_heads=2,
            hidden_dims="16", mode="stack", encodings="gasf", freeze_encoder=False, epochs=4, batch_size=32,
            progress=False, tensorboard=False, device="cpu", early_stopping_patience=2, lr=3e-3)


def test_scrambled_test_split_changes_nothing_but_the_test_score(tmp_path):
    real = make_dataset()
    rng = np.random.default_rng(7)
    t = real.test
    scrambled = t.subset(np.arange(len(t)))
    scrambled.x = rng.normal(0, 3, t.x.shape).astype(np.float32)  # other signals
    scrambled.y = rng.permutation(t.y)  # other labels
    runs = {}
    for name, test in (("real", t), ("scrambled", scrambled)):
        cfg = Config(**TINY, output_dir=str(tmp_path), run_name=name)
        runs[name] = train(cfg, dataset=Dataset("synthetic", real.train, test))
    # selection, early stopping and the chosen weights are the same ...
    hist = {n: (tmp_path / n / "metrics.jsonl").read_text().splitlines() for n in runs}
    strip = ("epoch_time_s", "train_time_s", "samples_per_s")
    clean = {n: [{k: v for k, v in json.loads(s).items() if k not in strip} for s in h] for n, h in hist.items()}
    assert clean["real"] == clean["scrambled"]
    assert runs["real"].best_epoch == runs["scrambled"].best_epoch
    a = torch.load(tmp_path / "real" / "best.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "scrambled" / "best.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # ... and only the test score, computed once at the end, differs
    assert runs["real"].test["accuracy"] > runs["scrambled"].test["accuracy"] + 0.2


def test_cv_never_looks_at_the_test_split_for_choices(tmp_path):
    """Scrambled test windows change the test scores only: fold validation scores and weights stay."""
    real = synthetic_dataset(160, 40)
    rng = np.random.default_rng(3)
    t = real.test.subset(np.arange(len(real.test)))
    t.x = rng.normal(0, 3, t.x.shape).astype(np.float32)
    t.y = rng.permutation(t.y)
    out = {}
    for name, test in (("real", real.test), ("scrambled", t)):
        cfg = tiny_config(tmp_path, run_name=name, epochs=2)
        out[name] = run_cv(cfg, 2, dataset=Dataset("synthetic", real.train, test), baselines=False)
    for a, b in zip(out["real"]["folds"], out["scrambled"]["folds"], strict=True):
        assert a["val_accuracy"] == b["val_accuracy"] and a["best_epoch"] == b["best_epoch"]
        wa = torch.load(Path(a["run_dir"]) / "best.pt", weights_only=True)["model"]
        wb = torch.load(Path(b["run_dir"]) / "best.pt", weights_only=True)["model"]
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert out["real"]["ensemble_test"]["accuracy"] > out["scrambled"]["ensemble_test"]["accuracy"]
