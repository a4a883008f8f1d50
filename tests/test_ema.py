"""Weight EMA (--ema-decay): the averaged weights are validated, kept as best.pt, tested and resumed."""

import os
import signal

import pytest
import torch
from synth import make_dataset

from harvit.config import Config
from harvit.evaluation.inference import evaluate_split
from harvit.models import checkpoint as ck
from harvit.training import build_run, fit, loop, train
from harvit.training.interrupts import Interrupted
from harvit.utils.errors import HarvitError

TINY = dict(encoder="vit_tiny_patch16_224", img_size=16, patch_size=8, embed_dim=32, depth=1, num_heads=2,
            hidden_dims="16", mode="stack", encodings="gasf", freeze_encoder=False, epochs=3, batch_size=32,
            progress=False, tensorboard=False, device="cpu", early_stopping_patience=0, lr=3e-3, threads=1,
            ema_decay=0.9)


def tiny(tmp_path, **kw) -> Config:
    return Config(**{**TINY, "output_dir": str(tmp_path), **kw})


def _head(state: dict) -> dict:
    return {k: v for k, v in state.items() if k.startswith("net.head")}


def test_ema_weights_are_validated_saved_and_tested(tmp_path):
    ds = make_dataset()
    res = train(tiny(tmp_path, run_name="r", refit=False), dataset=ds)  # the selection's EMA (no refit)
    run = tmp_path / "r"
    latest = ck.load_checkpoint(run / "latest.pt")
    best = ck.load_checkpoint(run / "best.pt")
    assert "ema" in latest and "ema" not in best
    # the averaged weights trail the live ones: they are not the same tensors
    live, ema = _head(latest["model"]), _head(latest["ema"])
    assert any(not torch.equal(live[k], ema[k]) for k in live)
    # best.pt holds the EMA weights of its epoch; with the best at the last epoch they are latest's EMA
    if res.best_epoch == 3:
        assert all(torch.equal(best["model"][k], latest["ema"][k]) for k in latest["ema"])
    # the recorded validation accuracy is that of the EMA weights, not of the live ones
    t = build_run(tiny(tmp_path, run_name="r", resume=True, refit=False), dataset=ds)
    assert t.ema is not None
    assert all(torch.equal(t.ema.module.state_dict()[k], v) for k, v in latest["ema"].items())
    val_ema = evaluate_split(t.ema.module, t.splits["val"], 256, t.autocast)
    val_live = evaluate_split(t.model, t.splits["val"], 256, t.autocast)
    last = t.state.history[-1]
    assert val_ema["loss"] == pytest.approx(last["val_loss"], rel=1e-5)
    assert val_live["loss"] != pytest.approx(last["val_loss"], rel=1e-5)


def test_ema_run_resumes_exactly_after_an_interrupt(tmp_path, monkeypatch):
    """SIGINT mid-epoch 2, resume: the same history, EMA and test result as an uninterrupted run."""
    ds = make_dataset()
    full = train(tiny(tmp_path, run_name="full", deterministic=True), dataset=ds)

    real_step = loop.train_step
    calls = {"n": 0}

    def step_then_interrupt(run, idx):
        out = real_step(run, idx)
        calls["n"] += 1
        if calls["n"] == run.steps_per_epoch + 2:  # inside epoch 2
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(loop, "train_step", step_then_interrupt)
    with pytest.raises(Interrupted):
        fit(build_run(tiny(tmp_path, run_name="cut", deterministic=True), dataset=ds))
    monkeypatch.setattr(loop, "train_step", real_step)
    cut = ck.load_checkpoint(tmp_path / "cut" / "latest.pt")
    assert (cut["epoch"], cut["step_in_epoch"]) == (1, 2)
    resumed = fit(build_run(tiny(tmp_path, run_name="cut", deterministic=True, resume=True), dataset=ds))
    for key in ("test", "test_loss", "best_epoch", "confusion_matrix"):
        assert getattr(resumed, key) == getattr(full, key), key
    a = ck.load_checkpoint(tmp_path / "full" / "latest.pt")["ema"]
    b = ck.load_checkpoint(tmp_path / "cut" / "latest.pt")["ema"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_another_ema_setting_is_refused(tmp_path):
    train(tiny(tmp_path, epochs=1), dataset=make_dataset())
    with pytest.raises(HarvitError, match="ema_decay"):
        build_run(tiny(tmp_path, epochs=1, resume=True, ema_decay=0.0), dataset=make_dataset())


def test_checkpoint_from_before_a_setting_existed_resumes_with_its_default(tmp_path):
    """A latest.pt written before --ema-decay/--train-stride existed has no such keys: they mean the defaults."""
    train(tiny(tmp_path, epochs=1, ema_decay=0.0), dataset=make_dataset())
    path = tmp_path / "optimized" / "latest.pt"
    state = ck.load_checkpoint(path)
    for key in ("ema_decay", "train_stride", "split_seed", "image_dropout"):
        state["config"].pop(key)
    ck.save_checkpoint(path, state)
    t = build_run(tiny(tmp_path, epochs=2, ema_decay=0.0, resume=True), dataset=make_dataset())
    assert t.state.epoch == 1
