"""predict (raw recordings -> per-window activities), export (ONNX, verified) and the examples/ scripts.

Two TINY models are trained once on synthetic windows: one with window statistics (stack mode,
gasf: 1 view) and one without (sensor mode, gasf + mtf: 3 views), so both export variants and the
MTF encoder in the graph are covered.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from synth import make_dataset

from harvit.cli import main
from harvit.config import Config
from harvit.data.signals import preprocess_inertial, sliding_windows
from harvit.deploy.predict import predict_recording
from harvit.features.statistics import window_statistics
from harvit.models.loading import load_trained
from harvit.utils.errors import HarvitError

ort = pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TINY = dict(encoder="vit_tiny_patch16_224", img_size=16, patch_size=8, embed_dim=32, depth=1, num_heads=2,
            hidden_dims="16", mode="stack", encodings="gasf", freeze_encoder=False, epochs=1, batch_size=32,
            progress=False, tensorboard=False, device="cpu", early_stopping_patience=0, threads=1)
VARIANTS = {
    "stats": dict(window_stats=True),
    "nostats": dict(window_stats=False, mode="sensor", encodings="gasf,mtf"),
}


@pytest.fixture(autouse=True)
def _offline(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "harvit-cache"))
    monkeypatch.setenv("HARVIT_OFFLINE", "1")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    from harvit.training import train

    out = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARVIT_CACHE_DIR", str(out / "cache"))
        mp.setenv("HARVIT_OFFLINE", "1")
        for name, kw in VARIANTS.items():
            train(Config(**{**TINY, **kw, "output_dir": str(out), "run_name": name}),
                  dataset=make_dataset(120, 30))
    return {name: out / name for name in VARIANTS}


def recording(n: int = 700, rate_hz: float = 50.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A raw recording: acc [n, 3] in g (gravity on z + a 1 Hz swing), gyro [n, 3] in rad/s."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate_hz
    acc = np.stack([0.3 * np.sin(2 * np.pi * t), np.zeros(n), np.ones(n)], axis=1) + rng.normal(0, 0.02, (n, 3))
    gyro = np.stack([0.5 * np.sin(2 * np.pi * t), np.zeros(n), np.zeros(n)], axis=1) + rng.normal(0, 0.02, (n, 3))
    return acc, gyro


def write_recording(folder: Path, acc: np.ndarray, gyro: np.ndarray) -> tuple[Path, Path]:
    a, g = folder / "acc.txt", folder / "gyro.txt"
    np.savetxt(a, acc, fmt="%.7e")
    np.savetxt(g, gyro, fmt="%.7e")
    return a, g


# ---- predict ------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_predict_recording_api(runs, variant):
    trained = load_trained(runs[variant])
    acc, gyro = recording(700)
    res = predict_recording(trained, acc, gyro, 50.0)
    n = (700 - 128) // 64 + 1
    assert res["probs"].shape == (n, 3) and res["pred"].shape == (n,) and len(res["label"]) == n
    np.testing.assert_allclose(res["probs"].sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(res["start_s"], np.arange(n) * 64 / 50.0)
    np.testing.assert_allclose(res["end_s"] - res["start_s"], 128 / 50.0)
    assert set(res["label"]) <= set(trained.classes)
    np.testing.assert_allclose(res["prob"], res["probs"].max(1))
    assert sum(res["share"].values()) == pytest.approx(1.0)
    assert sum(res["seconds"].values()) == pytest.approx(res["covered_s"])
    # the same windows through the model directly
    wins = sliding_windows(preprocess_inertial(acc, gyro, 50.0), 128, 64)
    with torch.no_grad():
        direct = trained.model(torch.from_numpy(wins)).argmax(1).numpy()
    np.testing.assert_array_equal(res["pred"], direct)


def test_predict_resamples_other_rates(runs):
    trained = load_trained(runs["nostats"])
    acc, gyro = recording(700)
    res50 = predict_recording(trained, acc, gyro, 50.0)
    t100 = np.arange(1400) / 100.0
    up = [np.stack([np.interp(t100, np.arange(700) / 50.0, s[:, k]) for k in range(3)], 1) for s in (acc, gyro)]
    res100 = predict_recording(trained, up[0], up[1], 100.0)
    assert len(res100["pred"]) == len(res50["pred"])
    assert res100["rate_hz"] == 100.0 and res100["duration_s"] == pytest.approx(14.0)
    assert np.abs(res100["probs"] - res50["probs"]).max() < 0.2  # same signal, resampled


def test_predict_refuses_models_on_other_channels(runs):
    trained = load_trained(runs["stats"])
    other = dataclasses.replace(trained, channels=[f"ch{i}" for i in range(9)])
    with pytest.raises(HarvitError, match="9 HAR channels"):
        predict_recording(other, *recording(300), 50.0)


def test_predict_cli_writes_csv(runs, tmp_path, capsys):
    a, g = write_recording(tmp_path, *recording(700))
    out = tmp_path / "pred" / "windows.csv"
    rc = main(["predict", str(runs["stats"]), "--acc", str(a), "--gyro", str(g), "--device", "cpu",
               "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "summary: 9 windows" in text and "%" in text
    rows = out.read_text().splitlines()
    assert rows[0].split(",")[:5] == ["window", "start_s", "end_s", "activity", "probability"]
    assert len(rows) == 1 + 9
    first = rows[1].split(",")
    assert float(first[1]) == 0.0 and float(first[2]) == pytest.approx(2.56)
    assert sum(float(p) for p in first[5:]) == pytest.approx(1.0, abs=1e-4)
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_predict_prints_the_summary_and_a_head_of_rows(runs, tmp_path, capsys):
    """Issue 15: a long recording prints its summary and the first 10 windows; every row goes to the CSV."""
    a, g = write_recording(tmp_path, *recording(2000))
    n = (2000 - 128) // 64 + 1
    out = tmp_path / "windows.csv"
    assert main(["predict", str(runs["stats"]), "--acc", str(a), "--gyro", str(g), "--device", "cpu",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.index(f"summary: {n} windows") < text.index(f"windows (first 10 of {n}):")
    rows = re.findall(r"^\s+\d+\.\d\d\s+\d+\.\d\d\s+\S+\s+\d\.\d{3}$", text, re.M)
    assert len(rows) == 10
    assert f"every window: {out} (CSV, {n} rows)" in text
    assert len(out.read_text().splitlines()) == 1 + n
    assert main(["predict", str(runs["stats"]), "--acc", str(a), "--gyro", str(g), "--device", "cpu"]) == 0
    assert "every window: --out FILE writes them as CSV" in capsys.readouterr().out


def _bad(tmp_path: Path, case: str) -> tuple[list[str], str]:
    acc, gyro = recording(400)
    a, g = write_recording(tmp_path, acc, gyro)
    if case == "missing":
        return ["--acc", str(tmp_path / "nope.txt"), "--gyro", str(g)], "nope.txt not found"
    if case == "non_numeric":
        lines = a.read_text().splitlines()
        lines[6] = "1.0 abc 2.0"
        a.write_text("\n".join(lines) + "\n")
        return ["--acc", str(a), "--gyro", str(g)], r"acc\.txt line 7: found non-numeric value 'abc'"
    if case == "columns":
        np.savetxt(g, gyro[:, :2])
        return ["--acc", str(a), "--gyro", str(g)], r"gyro\.txt line 1: found 2 values, expected 3"
    if case == "lengths":
        np.savetxt(g, gyro[:300])
        return ["--acc", str(a), "--gyro", str(g)], "400 rows but .*300"
    if case == "short":
        a, g = write_recording(tmp_path, acc[:100], gyro[:100])
        return ["--acc", str(a), "--gyro", str(g)], r"100 samples .*one window needs 2\.56 s"
    if case == "nan":
        lines = g.read_text().splitlines()
        lines[9] = "nan 0 0"
        g.write_text("\n".join(lines) + "\n")
        return ["--acc", str(a), "--gyro", str(g)], r"gyro\.txt line 10: found NaN"
    if case == "rate":
        return ["--acc", str(a), "--gyro", str(g), "--rate-hz", "-5"], "--rate-hz"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["missing", "non_numeric", "columns", "lengths", "short", "nan", "rate"])
def test_predict_bad_input_is_one_line(runs, tmp_path, capsys, case):
    args, pattern = _bad(tmp_path, case)
    rc = main(["predict", str(runs["stats"]), *args, "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("harvit: error: ") and err.count("\n") == 1, err
    assert re.search(pattern, err), err


def test_predict_bad_input_subprocess_has_no_traceback(runs, tmp_path):
    args, _ = _bad(tmp_path, "nan")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    p = subprocess.run([sys.executable, "-m", "harvit", "predict", str(runs["stats"]), *args], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr and p.stderr.strip().count("\n") == 0, p.stderr


# ---- export -------------------------------------------------------------------------------------
def _windows(n: int = 4) -> np.ndarray:
    return make_dataset(30, 12, seed=5).test.x[:n]


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("what", ["window", "images"])
def test_export_matches_torch(runs, tmp_path, variant, what):
    from harvit.deploy.export import export_onnx

    trained = load_trained(runs[variant])
    out = tmp_path / "m.onnx"
    info = export_onnx(trained, out, what)
    assert out.is_file() and info["verified"]["max_abs_diff"] <= 1e-4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.json"]

    # the documented recipe on real windows reproduces the PyTorch model (statistics included)
    x = _windows(4)
    model = trained.model
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    stats = window_statistics(torch.from_numpy(x), trained.channels).numpy() if model.stats is not None else None
    if what == "window":
        feeds = {"signals": x}  # the window alone: the graph computes its statistics
        got = session.run(None, feeds)[0]
    else:
        v = model.n_views
        with torch.no_grad():
            feeds = {"images": model.imager.all_views(torch.from_numpy(x)).numpy()}
        if stats is not None:
            feeds["window_statistics"] = np.repeat(stats, v, axis=0)
        logits = torch.from_numpy(session.run(None, feeds)[0]).view(len(x), v, -1)
        got = torch.log_softmax(logits, -1).mean(1).numpy()
    assert [i.name for i in session.get_inputs()] == list(feeds)
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_export_sidecar(runs, tmp_path):
    from harvit.deploy.export import export_onnx

    trained = load_trained(runs["stats"])
    export_onnx(trained, tmp_path / "model.onnx", "images")
    meta = json.loads((tmp_path / "model.onnx.json").read_text())
    assert meta["what"] == "images" and meta["onnx"] == "model.onnx"
    assert [i["name"] for i in meta["inputs"]] == ["images", "window_statistics"]
    assert meta["inputs"][0]["shape"] == ["batch", 9, 16, 16] and meta["inputs"][1]["shape"] == ["batch", 300]
    assert meta["outputs"][0]["name"] == "logits"
    assert meta["classes"] == trained.classes and meta["channels"] == trained.channels
    assert (meta["rate_hz"], meta["window_length"], meta["stride"]) == (50.0, 128, 64)
    assert (meta["img_size"], meta["encodings"], meta["mode"], meta["n_views"]) == (16, ["gasf"], "stack", 1)
    scaler = trained.model.imager.scaler
    np.testing.assert_allclose(meta["scaler"]["lo"], scaler.lo.numpy(), rtol=1e-6)
    np.testing.assert_allclose(meta["scaler"]["hi"], scaler.hi.numpy(), rtol=1e-6)
    assert meta["scaler"]["mode"] == "global" and meta["scaler"]["out_range"] == "unit"
    stats = meta["window_stats"]
    assert stats["n_features"] == 300 and len(stats["mean"]) == len(stats["std"]) == 300
    np.testing.assert_allclose(stats["std"], trained.model.stats.std.numpy(), rtol=1e-6)


def test_export_cli_default_paths(runs, capsys):
    rc = main(["export", str(runs["nostats"])])
    assert rc == 0
    out = capsys.readouterr().out
    onnx_path = runs["nostats"] / "model.onnx"
    assert onnx_path.is_file() and Path(f"{onnx_path}.json").is_file()
    assert "verified with onnxruntime" in out and "signals ['batch', 9, 128]" in out
    meta = json.loads(Path(f"{onnx_path}.json").read_text())
    assert meta["window_stats"] is None and [i["name"] for i in meta["inputs"]] == ["signals"]
    assert (meta["mode"], meta["n_views"], meta["encodings"]) == ("sensor", 3, ["gasf", "mtf"])


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_onnx_file_gets_the_same_mode_as_its_sidecar(runs, tmp_path, umask, mode):
    """Issue 15: model.onnx was 0600 (mkstemp's mode, kept when torch.onnx reopened the file) beside a 0644
    sidecar; both now follow the umask."""
    from harvit.deploy.export import export_onnx

    old = os.umask(umask)
    try:
        export_onnx(load_trained(runs["nostats"]), tmp_path / "m.onnx")
    finally:
        os.umask(old)
    assert (tmp_path / "m.onnx").stat().st_mode & 0o777 == mode
    assert (tmp_path / "m.onnx.json").stat().st_mode & 0o777 == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.json"]  # no temporary file left


def test_export_mismatch_fails_loudly_and_writes_nothing(runs, tmp_path, monkeypatch, capsys):
    import harvit.deploy.export as export

    monkeypatch.setattr(export, "TOLERANCE", -1.0)  # any difference, even 0, now counts as a mismatch
    out = tmp_path / "bad.onnx"
    rc = main(["export", str(runs["nostats"]), "--out", str(out), "--what", "images"])
    err = capsys.readouterr().err
    assert rc == 2 and "differs from PyTorch" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_export_bad_checkpoint_is_one_line(tmp_path, capsys):
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    assert main(["export", str(tmp_path / "x.pt")]) == 2
    assert capsys.readouterr().err.startswith("harvit: error: ")


def test_export_failure_names_both_exporters(runs, tmp_path, monkeypatch):
    from harvit.deploy.export import export_onnx

    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operator aten::frobnicate\nmore detail")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(HarvitError, match=r"could not export to ONNX: TorchScript exporter: RuntimeError: "
                                          r"unsupported operator aten::frobnicate; dynamo exporter"):
        export_onnx(load_trained(runs["nostats"]), tmp_path / "m.onnx", "window")
    assert list(tmp_path.iterdir()) == []


# ---- examples -----------------------------------------------------------------------------------
SCRIPTS = sorted(EXAMPLES.glob("*.sh"))


def _strip(text: str) -> str:
    """Script text without heredoc bodies, comment lines and echo lines; continuations joined."""
    out, heredoc = [], None
    for line in text.splitlines():
        if heredoc is not None:
            if line.strip() == heredoc:
                heredoc = None
            continue
        m = re.search(r"<<-?\s*'?\"?(\w+)'?\"?", line)
        if m:
            heredoc = m.group(1)
        s = line.strip()
        if s.startswith("#") or s.startswith("echo "):
            continue
        out.append(line)
    return "\n".join(out).replace("\\\n", " ")


def harvit_calls(text: str) -> list[tuple[list[str], list[str]]]:
    """(subcommand words, --flags) of every ``harvit ...`` / ``-m harvit ...`` call in a script."""
    calls = []
    for line in _strip(text).splitlines():
        for m in re.finditer(r"(?:^|[\s;&|(])harvit\s+([a-z][\w-]*)((?:\s+(?!(?:\||&&|\|\||;))\S+)*)", line):
            sub, rest = m.group(1), m.group(2)
            rest = re.split(r"\s(?:\|\|?|&&|;)\s", rest)[0]
            words = [sub]
            if sub == "data":
                words.append(rest.split()[0])
            flags = re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", rest)
            calls.append((words, flags))
    return calls


def test_examples_are_ten_scripts_with_readme():
    assert len(SCRIPTS) == 10, [s.name for s in SCRIPTS]
    readme = (EXAMPLES / "README.md").read_text()
    for s in SCRIPTS:
        assert s.name in readme, s.name
        text = s.read_text()
        assert text.startswith("#!/usr/bin/env bash\n# "), s.name
        assert "set -euo pipefail" in text and "${OUT:-" in text and "${HARVIT_DATA_DIR:-" in text, s.name


def test_examples_bash_syntax():
    for s in SCRIPTS:
        p = subprocess.run(["bash", "-n", str(s)], capture_output=True, text=True)
        assert p.returncode == 0, f"{s.name}: {p.stderr}"


def test_example_parser_finds_calls():
    calls = harvit_calls('x \\\n  harvit train --a 1 \\\n --b-c 2 | tail\n# harvit report --no\n'
                         'echo "harvit train --nope"\ntorchrun --n=2 -m harvit export R --what images\n'
                         "python - <<'PY'\nharvit predict --x\nPY\nharvit data info hapt6 --data-dir d\n")
    assert calls == [(["train"], ["--a", "--b-c"]), (["export"], ["--what"]), (["data", "info"], ["--data-dir"])]


def test_examples_use_existing_subcommands_and_flags():
    calls = {s.name: harvit_calls(s.read_text()) for s in SCRIPTS}
    assert sum(len(c) for c in calls.values()) >= 15
    helps: dict[tuple[str, ...], str] = {}
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    for name, found in calls.items():
        for words, flags in found:
            key = tuple(words)
            if key not in helps:
                p = subprocess.run([sys.executable, "-m", "harvit", *words, "--help"], env=env, capture_output=True,
                                   text=True, timeout=60)
                assert p.returncode == 0, f"{name}: harvit {' '.join(words)} --help failed: {p.stderr.strip()}"
                helps[key] = p.stdout
            for flag in flags:
                assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", helps[key]), \
                    f"{name}: harvit {' '.join(words)} has no flag {flag}"
    used = {w[0] for c in calls.values() for w, _ in c}
    assert {"train", "evaluate", "report", "baseline", "predict", "export", "data"} <= used


def test_examples_readme_is_honest_about_ddp():
    import inspect

    import harvit.training

    training = Path(inspect.getfile(harvit.training)).parent
    ddp = any("init_process_group" in f.read_text() for f in training.glob("*.py"))
    readme = (EXAMPLES / "README.md").read_text()
    assert ("DDP is not implemented" in readme) == (not ddp)
    assert "torchrun" in (EXAMPLES / "10_multi_gpu_ddp.sh").read_text()

