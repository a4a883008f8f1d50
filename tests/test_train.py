"""End-to-end training on small synthetic data: outputs, feature cache, resume."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from synth import make_dataset, write_uci_layout

from harvit.config import Config
from harvit.training import build_run, fit, train
from harvit.training.feature_cache import build_feature_cache
from harvit.training.step import batch_logits
from harvit.utils.errors import HarvitError

TINY = dict(encoder="vit_tiny_patch16_224", img_size=16, patch_size=8, embed_dim=32, depth=1, num_heads=2,
            hidden_dims="16", mode="stack", encodings="gasf", freeze_encoder=False, epochs=2, batch_size=32,
            progress=False, tensorboard=False, device="cpu", early_stopping_patience=0)
TINY_FLAGS = ["--encoder", "vit_tiny_patch16_224", "--img-size", "16", "--patch-size", "8", "--embed-dim", "32",
              "--depth", "1", "--num-heads", "2", "--hidden-dims", "16", "--mode", "stack", "--encodings", "gasf",
              "--no-freeze-encoder", "--batch-size", "32", "--no-progress", "--no-tensorboard", "--device", "cpu",
              "--deterministic", "--threads", "1", "--early-stopping-patience", "0"]


def tiny(tmp_path, **kw) -> Config:
    return Config(**{**TINY, "output_dir": str(tmp_path), **kw})


def test_train_writes_run_folder(tmp_path):
    res = train(tiny(tmp_path, tensorboard=True, run_name="r"), dataset=make_dataset())
    run = tmp_path / "r"
    for name in ("config.json", "best.pt", "latest.pt", "metrics.jsonl", "training_results.json"):
        assert (run / name).is_file(), name
    assert any((run / "logs").iterdir())
    lines = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_time_s", "samples_per_s"):
        assert all(isinstance(r[key], float | int) for r in lines), key
    saved = json.loads((run / "training_results.json").read_text())
    for key in ("test_accuracy", "test_macro_f1", "per_class_accuracy", "confusion_matrix", "best_epoch",
                "total_time_s", "config"):
        assert key in saved, key
    assert saved["test_accuracy"] == res.test["accuracy"]
    assert sum(map(sum, saved["confusion_matrix"])) == 90
    # validation holds out whole training subjects; test subjects are the dataset's own
    split = saved["split"]
    assert not set(split["val"]["subjects"]) & set(split["train"]["subjects"])
    assert split["test"]["subjects"] == [2, 4]


def test_learns_the_synthetic_task(tmp_path):
    res = train(tiny(tmp_path, epochs=6, lr=3e-3), dataset=make_dataset())
    assert res.test["accuracy"] > 0.8


def test_existing_run_is_not_overwritten(tmp_path):
    train(tiny(tmp_path, epochs=1), dataset=make_dataset())
    before = (tmp_path / "optimized" / "latest.pt").read_bytes()
    with pytest.raises(HarvitError, match="already holds a run"):
        build_run(tiny(tmp_path, epochs=1), dataset=make_dataset())
    assert (tmp_path / "optimized" / "latest.pt").read_bytes() == before


def test_resume_with_other_architecture_is_refused(tmp_path):
    train(tiny(tmp_path, epochs=1), dataset=make_dataset())
    with pytest.raises(HarvitError, match="encodings"):
        build_run(tiny(tmp_path, epochs=1, resume=True, encodings="gadf"), dataset=make_dataset())


def test_feature_cache_matches_uncached_path(tmp_path, monkeypatch):
    """Same seed and head init: the cached and the uncached frozen paths agree within 0.2 points."""
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / "cache"))
    common = dict(freeze_encoder=True, epochs=3, lr=3e-3, mode="flatten", encodings="gasf,gadf")
    a = build_run(tiny(tmp_path, run_name="cached", **common), dataset=make_dataset())
    assert a.use_feature_cache
    ra = fit(a)
    b = build_run(tiny(tmp_path, run_name="plain", feature_cache=False, **common), dataset=make_dataset())
    assert not b.use_feature_cache
    rb = fit(b)
    ha = [h["val_acc"] for h in a.state.history]
    hb = [h["val_acc"] for h in b.state.history]
    assert max(abs(x - y) for x, y in zip(ha, hb, strict=True)) <= 0.002
    assert abs(ra.test["accuracy"] - rb.test["accuracy"]) <= 0.002
    assert list((tmp_path / "cache" / "features").glob("*.npy"))


def test_init_from_loads_encoder_weights(tmp_path):
    train(tiny(tmp_path, run_name="stage1", epochs=1), dataset=make_dataset())
    t = build_run(tiny(tmp_path, run_name="stage2", epochs=1, init_from=str(tmp_path / "stage1" / "best.pt"),
                     hidden_dims="8"), dataset=make_dataset())
    src = torch.load(tmp_path / "stage1" / "best.pt", weights_only=True)["model"]
    own = t.model.state_dict()
    enc = [k for k in own if k.startswith("net.encoder.")]
    assert enc and all(torch.equal(own[k], src[k]) for k in enc)


def _cli(args, env, timeout=240):
    return subprocess.run([sys.executable, "-m", "harvit", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def uci_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("uci")
    write_uci_layout(root, n_train=150, n_test=48)
    env = {**os.environ, "HARVIT_DATA_DIR": str(root), "HARVIT_CACHE_DIR": str(root / "cache"),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    return root, env


def test_stop_and_resume_equals_uninterrupted(uci_env, tmp_path):
    """kill -9 after epoch 2 of 4, resume: final metrics equal an uninterrupted run (--deterministic)."""
    _, env = uci_env
    base = ["train", "--dataset", "uci_har", "--epochs", "4", "--output-dir", str(tmp_path), *TINY_FLAGS]
    full = _cli([*base, "--run-name", "full"], env)
    assert full.returncode == 0, full.stderr[-2000:]

    run = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, "-m", "harvit", *base, "--run-name", "cut"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        m = run / "metrics.jsonl"
        if m.is_file() and len(m.read_text().splitlines()) >= 2:
            proc.kill()
            break
        time.sleep(0.05)
    proc.wait()
    assert proc.returncode != 0, "the run finished before it could be killed"
    done = len((run / "metrics.jsonl").read_text().splitlines())
    assert 2 <= done < 4
    resumed = _cli([*base, "--run-name", "cut", "--resume"], env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = json.loads((tmp_path / "full" / "training_results.json").read_text())
    b = json.loads((run / "training_results.json").read_text())
    for key in ("test_accuracy", "test_macro_f1", "test_loss", "best_epoch", "confusion_matrix"):
        assert a[key] == b[key], key
    ma = (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()
    mb = (run / "metrics.jsonl").read_text().splitlines()
    strip = ("epoch_time_s", "train_time_s", "samples_per_s")
    clean = [{k: v for k, v in json.loads(s).items() if k not in strip} for s in ma]
    assert clean == [{k: v for k, v in json.loads(s).items() if k not in strip} for s in mb]


def test_feature_pass_halves_its_batch_on_out_of_memory(tmp_path, monkeypatch):
    """The frozen feature pass probes down to the largest batch that fits; the features are unchanged."""
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / "cache"))
    common = dict(freeze_encoder=True, epochs=1, mode="flatten", encodings="gasf", eval_batch_size=72)
    ref = build_run(tiny(tmp_path, run_name="ref", **common), dataset=make_dataset())
    build_feature_cache(ref)
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / "cache2"))  # no reuse of ref's files
    t = build_run(tiny(tmp_path, run_name="oom", **common), dataset=make_dataset())

    def too_big(_module, args):
        if args[0].shape[0] > 18:
            raise torch.OutOfMemoryError("test: more than 18 images")

    handle = t.model.net.encoder.register_forward_pre_hook(too_big)
    build_feature_cache(t)
    assert t.feature_batch == 18  # 72 -> 36 -> 18 images (2 windows x 9 views)
    for name in ("train", "val", "test"):
        assert torch.allclose(t.splits[name].feats, ref.splits[name].feats, atol=1e-5)
    handle.remove()

    def never(_module, _args):
        raise torch.OutOfMemoryError("test: nothing fits")

    t.model.net.encoder.register_forward_pre_hook(never)
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / "cache3"))
    with pytest.raises(HarvitError, match="even for one window"):
        build_feature_cache(t)


def test_split_seed_fixes_the_validation_subjects_across_seeds(tmp_path):
    ds = make_dataset()
    subjects = {s: build_run(tiny(tmp_path, run_name=f"p{s}", seed=s), dataset=ds).windows["val"].subjects()
                for s in range(4)}
    assert len({tuple(v) for v in subjects.values()}) > 1  # the seed alone moves the validation subjects
    a = build_run(tiny(tmp_path, run_name="a", seed=1, split_seed=3), dataset=ds)
    b = build_run(tiny(tmp_path, run_name="b", seed=2, split_seed=3), dataset=ds)
    assert a.windows["val"].subjects() == b.windows["val"].subjects() == subjects[3]
    wa, wb = a.model.net.head[0].weight, b.model.net.head[0].weight
    assert not torch.equal(wa, wb)  # ... while the initialisation follows --seed


def test_resume_with_another_seed_is_refused(tmp_path):
    train(tiny(tmp_path, epochs=1), dataset=make_dataset())
    with pytest.raises(HarvitError, match="seed"):
        build_run(tiny(tmp_path, epochs=1, resume=True, seed=7), dataset=make_dataset())
    with pytest.raises(HarvitError, match="augment_axis"):  # another augmentation is another run too
        build_run(tiny(tmp_path, epochs=1, resume=True, augment=True, augment_axis="lying"), dataset=make_dataset())


def test_augmented_windows_get_their_own_statistics(tmp_path, monkeypatch):
    """With --augment the head sees the statistics of the turned window its images show."""
    import harvit.training.step as train_mod

    seen: dict[str, torch.Tensor] = {}
    real_augment = train_mod.augment_batch

    def spy_augment(x, *args, **kwargs):
        seen["x"] = x
        seen["aug"] = real_augment(x, *args, **kwargs)
        return seen["aug"]

    monkeypatch.setattr(train_mod, "augment_batch", spy_augment)
    t = build_run(tiny(tmp_path, augment=True, augment_axis="x", augment_rotation=180.0, window_stats=True),
                dataset=make_dataset())
    real_net = t.model.net.forward

    def spy_net(images, stats=None):
        seen["stats"] = stats
        return real_net(images, stats)

    monkeypatch.setattr(t.model.net, "forward", spy_net)
    batch_logits(t, torch.arange(8))
    with torch.no_grad():
        torch.testing.assert_close(seen["stats"], t.model.stats(seen["aug"]))
        assert not torch.allclose(seen["stats"], t.model.stats(seen["x"]), atol=1e-3)


def test_lying_roll_without_total_acc_is_refused_before_anything_is_written(tmp_path):
    from dataclasses import replace

    from harvit.data import Dataset

    ds = make_dataset()
    body = Dataset(ds.name, *(replace(w, x=w.x[:, :6], channels=w.channels[:6]) for w in (ds.train, ds.test)))
    with pytest.raises(HarvitError, match="--augment-axis lying: needs total_acc"):
        build_run(tiny(tmp_path, augment=True, augment_axis="lying"), dataset=body)
    assert not (tmp_path / "optimized").exists()
