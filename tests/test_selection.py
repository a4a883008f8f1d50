"""The test split never feeds model selection or early stopping."""

import json

import numpy as np
import torch
from synth import make_dataset

from harvit.config import Config
from harvit.data.windows import Dataset
from harvit.training import train

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
    assert runs["real"]["best_epoch"] == runs["scrambled"]["best_epoch"]
    a = torch.load(tmp_path / "real" / "best.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "scrambled" / "best.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # ... and only the test score, computed once at the end, differs
    assert runs["real"]["test_accuracy"] > runs["scrambled"]["test_accuracy"] + 0.2
