"""Cross-validation by subject (harvit cv) and ensembles of runs (harvit evaluate --ensemble)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_runs import synthetic_dataset, tiny_config, train_tiny_run
from synth import write_uci_layout

from harvit.cli import main
from harvit.evaluation.ensemble import ensemble_members, evaluate_ensemble, mean_log_probs
from harvit.evaluation.evaluate import evaluate_checkpoint
from harvit.training.cv import make_folds, run_cv
from harvit.utils.errors import HarvitError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("k", [2, 3, 5, 7, "loso"])
def test_folds_are_disjoint_and_cover_every_training_subject(k):
    subjects = [1, 3, 5, 6, 7, 8, 11, 14, 15, 16, 17, 19, 21]
    folds = make_folds(subjects, k, seed=42)
    flat = [s for f in folds for s in f]
    assert sorted(flat) == subjects and len(flat) == len(set(flat))  # disjoint, every subject once
    assert len(folds) == (len(subjects) if k == "loso" else k)
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    assert make_folds(subjects, k, seed=42) == folds  # seeded
    if k != "loso":
        assert make_folds(subjects, k, seed=1) != folds


def test_bad_fold_counts_are_one_line_errors():
    for bad in (1, 9, "x"):
        with pytest.raises(HarvitError, match="--folds"):
            make_folds([1, 2, 3, 4], bad, seed=0)


def test_cv_runs_folds_with_their_validation_subjects_and_skips_finished_ones(tmp_path, monkeypatch):
    ds = synthetic_dataset(160, 40)
    cfg = tiny_config(tmp_path, run_name="cv", epochs=1)
    res = run_cv(cfg, 2, dataset=ds, minirocket=False)
    parent = tmp_path / "cv"
    assert (parent / "cv_results.json").is_file() and (parent / "cv_report.md").is_file()
    assert [f["status"] for f in res["folds"]] == ["trained", "trained"]
    for f in res["folds"]:
        saved = json.loads((Path(f["run_dir"]) / "training_results.json").read_text())
        assert saved["split"]["val"]["subjects"] == f["val_subjects"]
        assert not set(saved["split"]["train"]["subjects"]) & set(f["val_subjects"])
    assert sorted(s for f in res["folds"] for s in f["val_subjects"]) == ds.train.subjects()
    assert set(res["baselines"]) == {"logreg", "gbt"} and res["ensemble_test"]["members"] == 2
    report = (parent / "cv_report.md").read_text()
    assert "Baselines on the same folds" in report and "logistic-regression" in report
    # a second call trains nothing: every fold is read back
    import harvit.training.cv as cvmod

    monkeypatch.setattr(cvmod, "train", lambda *a, **k: pytest.fail("a finished fold was trained again"))
    again = run_cv(cfg, 2, dataset=ds, minirocket=False)
    assert [f["status"] for f in again["folds"]] == ["done before", "done before"]
    assert [f["val_accuracy"] for f in again["folds"]] == [f["val_accuracy"] for f in res["folds"]]
    with pytest.raises(HarvitError, match="other folds"):
        run_cv(cfg, 3, dataset=ds, minirocket=False)


def test_cv_fold_killed_with_kill_9_resumes(tmp_path):
    root = write_uci_layout(tmp_path / "data", n_train=240, n_test=40)
    env = {**os.environ, "HARVIT_DATA_DIR": str(root), "HARVIT_CACHE_DIR": str(tmp_path / "cache"),
           "HARVIT_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "harvit", "cv", "--folds", "2", "--no-baselines", "--dataset", "uci_har",
           "--encoder", "vit_tiny_patch16_224", "--img-size", "16", "--patch-size", "8", "--embed-dim", "32",
           "--depth", "1", "--num-heads", "2", "--hidden-dims", "16", "--mode", "stack", "--encodings", "gasf",
           "--no-freeze-encoder", "--batch-size", "32", "--epochs", "3", "--early-stopping-patience", "0",
           "--no-progress", "--no-tensorboard", "--device", "cpu", "--threads", "1",
           "--output-dir", str(tmp_path / "out"), "--run-name", "cv"]
    fold0 = tmp_path / "out" / "cv" / "fold_0"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        m = fold0 / "metrics.jsonl"
        if m.is_file() and len(m.read_text().splitlines()) >= 1:
            proc.kill()  # SIGKILL: no handler runs
            break
        time.sleep(0.05)
    proc.wait()
    assert proc.returncode != 0, "the cv finished before it could be killed"
    assert (fold0 / "latest.pt").is_file() and not (fold0 / "training_results.json").is_file()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    res = json.loads((tmp_path / "out" / "cv" / "cv_results.json").read_text())
    assert res["folds"][0]["status"] == "resumed" and res["folds"][1]["status"] == "trained"
    epochs = [json.loads(s)["epoch"] for s in (fold0 / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]
    # without --refit the folds are not refit (their ensemble covers every training subject)
    assert "the folds are not refit" in done.stdout
    assert not any(f["refit"] for f in res["folds"]) and not (fold0 / "selected.pt").exists()


def test_ensemble_of_two_identical_runs_equals_one_run(tmp_path, capsys):
    ds = synthetic_dataset(120, 40)
    run = train_tiny_run(tmp_path, ds, epochs=1)
    twin = tmp_path / "twin"
    shutil.copytree(run, twin)
    one = evaluate_checkpoint(run, dataset=ds, json_path=tmp_path / "one.json")
    ens = evaluate_ensemble([run, twin], dataset=ds, json_path=tmp_path / "ens.json")
    for key in ("accuracy", "macro_f1", "confusion_matrix", "per_class", "per_subject"):
        assert ens[key] == one[key], key
    assert ens["loss"] == pytest.approx(one["loss"], rel=1e-5, abs=1e-6)
    lp = torch.log_softmax(torch.randn(6, 4), -1)
    assert torch.allclose(mean_log_probs([lp, lp]), lp, atol=1e-6)
    assert ensemble_members([run, twin]) == [run, twin]
    with pytest.raises(HarvitError, match="neither a run"):
        ensemble_members([tmp_path])  # holds runs, but is neither a run nor a cv parent


def test_evaluate_cli_ensemble(tmp_path, capsys, monkeypatch):
    import harvit.data

    ds = synthetic_dataset(120, 40)
    run = train_tiny_run(tmp_path, ds, epochs=1)
    monkeypatch.setattr(harvit.data.registry, "load_dataset", lambda *a, **k: ds)
    assert main(["evaluate", "--ensemble", str(run), str(run), "--json", str(tmp_path / "e.json")]) == 0
    out = capsys.readouterr().out
    assert "ensemble of 2 runs" in out and "per subject" in out
    assert main(["evaluate"]) == 2


def test_ensemble_predict_and_export_match_one_run(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from harvit.deploy.export import export_command
    from harvit.deploy.predict import predict_command
    from harvit.models.ensemble import load_ensemble
    from harvit.models.loading import load_trained

    ds = synthetic_dataset(120, 40)
    run = train_tiny_run(tmp_path, ds, epochs=1)
    twin = tmp_path / "twin"
    shutil.copytree(run, twin)
    rng = np.random.default_rng(0)
    acc, gyro = tmp_path / "acc.txt", tmp_path / "gyro.txt"
    np.savetxt(acc, rng.normal(0, 0.3, (400, 3)) + [0, 0, 1])
    np.savetxt(gyro, rng.normal(0, 0.2, (400, 3)))
    predict_command(run, acc, gyro, out=tmp_path / "one.csv")
    two = predict_command(None, acc, gyro, out=tmp_path / "two.csv", ensemble=[run, twin])
    assert "ensemble of 2 runs" in two
    assert (tmp_path / "one.csv").read_text() == (tmp_path / "two.csv").read_text()
    text = export_command(None, ensemble=[run, twin], out=tmp_path / "ens.onnx")
    assert "ens.onnx" in text and not (run / "model.onnx").exists()
    x = ds.test.x[:5]
    got = ort.InferenceSession(str(tmp_path / "ens.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"signals": x})[0]
    with torch.no_grad():
        want = torch.log_softmax(load_trained(run).model(torch.from_numpy(x)), -1).numpy()
        assert np.allclose(load_ensemble([run, twin]).model(torch.from_numpy(x)).numpy(), want, atol=1e-5)
    assert np.allclose(got, want, atol=1e-4)
