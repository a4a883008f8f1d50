"""Kernels chosen by measurement: the ridge Gram's probe, its cache, forcing, the fallback, progress lines."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

import harvit.evaluation.ridge as ridge
import harvit.utils.progress as progress
from harvit.evaluation.ridge import fit_ridge, gram_kernel
from harvit.utils import kernels
from harvit.utils.errors import HarvitError
from harvit.utils.machine import chosen, describe_machine, machine_info


@pytest.fixture(autouse=True)
def _fresh(tmp_path, monkeypatch):
    """Each test probes afresh: its own cache folder, no decision kept from another test, no forcing."""
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(ridge.GRAM_ENV, raising=False)
    kernels.forget()
    yield
    kernels.forget()


def _counts(n: int, p: int, seed: int = 0, high: int = 256) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, high, (n, p), dtype=np.uint8))


def _problem(n: int = 400, p: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    centre = rng.normal(0, 1, (3, p))

    def make(m):
        y = rng.integers(0, 3, m)
        return np.clip(rng.normal(60, 25, (m, p)) + 20 * centre[y], 0, 255).astype(np.uint8), y

    return make(n), make(n // 3)


def _best(fn, repeats: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def test_the_probes_pick_is_not_slower_than_the_other_kernel_and_both_give_the_same_gram(tmp_path, monkeypatch):
    """On this machine, the kernel the probe picks forms a small Gram of counts no more than 20% slower than
    the other (an int8 product without VNNI instructions is many times slower than float32: picking it by
    default was the fault), and both kernels give the same Gram, mean and variance. On a busy machine one
    timing can be disturbed: the probe and the comparison get three tries, each probing afresh."""
    counts = _counts(1024, 512)
    exact = ridge._int_scatter(counts)
    floats = ridge._float_scatter(counts, torch.float32)
    assert torch.equal(floats[0], counts.double().mean(0)) or torch.allclose(floats[0], counts.double().mean(0))
    if exact is not None and ridge._probe_gram().get("int8") != "inexact sums here":
        q = counts.double() - counts.double().mean(0)
        assert torch.allclose(exact[1], q.T @ q, rtol=1e-10, atol=1e-6)
        scale = exact[1].diagonal().sqrt()
        assert torch.allclose(floats[1].double() / scale[:, None] / scale, exact[1] / scale[:, None] / scale,
                              atol=1e-6)
        assert torch.allclose(floats[2], exact[2], rtol=1e-12)
    tries = []
    for attempt in range(3):
        monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / f"try{attempt}"))
        kernels.forget()
        choice = gram_kernel()
        if exact is None:
            assert choice == "float32"
            return
        times = {"int8": _best(lambda: ridge._int_products(counts)),
                 "float32": _best(lambda: ridge._float_scatter(counts, torch.float32))}
        other = "float32" if choice == "int8" else "int8"
        tries.append((choice, times))
        if times[choice] <= 1.2 * times[other]:
            return
    pytest.fail(f"the probe's pick was slower than the other kernel by more than 20% three times: {tries}")


def test_the_float_gram_of_counts_is_exact_in_float64_and_matches_the_8_bit_one():
    """In float64 the syrk path is exact (integer sums), equal to the 8-bit path's Gram up to the last bit of
    the mean shift; in float32 it differs by float32 rounding only. The diagonal is exact in both."""
    counts = _counts(3000, 70, seed=1)
    x = counts.double()
    q = x - x.mean(0)
    mean, gram, var = ridge._float_scatter(counts, torch.float64)
    assert torch.allclose(gram, q.T @ q, rtol=1e-12, atol=1e-6)
    assert torch.equal(var, (x.shape[0] * x.square().sum(0) - x.sum(0) ** 2) / x.shape[0] ** 2)
    _, gram32, var32 = ridge._float_scatter(counts, torch.float32)
    assert gram32.dtype == torch.float32 and torch.equal(var32, var)
    assert torch.allclose(gram32.double(), gram, rtol=1e-5, atol=1e-2 * float(gram.diagonal().max()) * 1e-5)
    assert torch.equal(gram32, gram32.T)  # mirrored exactly


def test_both_kernels_fit_the_same_classifier(monkeypatch):
    """The ridge fitted on counts through either kernel chooses the same penalty and predicts the same."""
    monkeypatch.setattr(ridge, "FLOAT_ROWS", 64)  # several row parts of the float path
    (x, y), (xv, yv) = _problem()
    fits = {k: fit_ridge(x, y, xv, yv, 3, gram_kernel=k) for k in ridge.GRAM_KERNELS}
    assert fits["int8"].gram_kernel == "int8" and fits["float32"].gram_kernel == "float32"
    assert fits["int8"].alpha == fits["float32"].alpha and fits["int8"].searched == fits["float32"].searched
    assert np.array_equal(fits["int8"].predict(xv), fits["float32"].predict(xv))
    np.testing.assert_allclose(fits["int8"].decision_function(xv), fits["float32"].decision_function(xv),
                               rtol=1e-6, atol=1e-8)


def test_a_forced_kernel_is_honoured_and_the_probe_is_not_run(monkeypatch):
    """``gram_kernel=`` beats ``HARVIT_GRAM_KERNEL``, which beats the probe; neither runs the probe; an unknown
    name is one clear error."""
    monkeypatch.setattr(ridge, "_probe_gram", lambda: pytest.fail("the probe ran although the kernel was forced"))
    (x, y), (xv, yv) = _problem()
    monkeypatch.setenv(ridge.GRAM_ENV, "float32")
    monkeypatch.setattr(ridge, "_int_products", lambda *a, **k: pytest.fail("int8 ran although float32 was forced"))
    assert fit_ridge(x, y, xv, yv, 3).gram_kernel == "float32"
    monkeypatch.undo()
    monkeypatch.setattr(ridge, "_probe_gram", lambda: pytest.fail("the probe ran although the kernel was forced"))
    monkeypatch.setenv(ridge.GRAM_ENV, "float32")
    calls = []
    real = ridge._float_scatter
    monkeypatch.setattr(ridge, "_float_scatter", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert fit_ridge(x, y, xv, yv, 3, gram_kernel="int8").gram_kernel == "int8" and not calls
    monkeypatch.setenv(ridge.GRAM_ENV, "int4")
    with pytest.raises(HarvitError, match="HARVIT_GRAM_KERNEL: unknown kernel 'int4'"):
        gram_kernel()
    with pytest.raises(HarvitError, match="unknown kernel 'fast'"):
        gram_kernel("fast")


def test_without_the_private_8_bit_product_the_float_path_gives_the_same_result(monkeypatch):
    """With ``torch._int_mm`` gone the int8 kernel falls back to float32 with the same Gram (exact in float64)
    and the same classifier, and the probe picks float32."""
    counts = _counts(600, 40, seed=2)
    (x, y), (xv, yv) = _problem(seed=3)
    with_int = ridge._moments(counts.numpy(), torch.float64, "int8")
    fit_int = fit_ridge(x, y, xv, yv, 3, gram_kernel="int8")
    monkeypatch.delattr(torch, "_int_mm")
    assert ridge._int_products(counts) is None
    without = ridge._moments(counts.numpy(), torch.float64, "int8")
    for a, b in zip(with_int, without, strict=True):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-6)
    fit_float = fit_ridge(x, y, xv, yv, 3, gram_kernel="int8")
    assert fit_float.alpha == fit_int.alpha and np.array_equal(fit_float.predict(xv), fit_int.predict(xv))
    assert "int8" not in ridge._probe_gram() and gram_kernel() == "float32"


def test_an_int8_product_without_fast_int8_instructions_loses_the_probe(monkeypatch):
    """torch's int8 product without oneDNN is its plain C++ loop, the path a CPU without VNNI takes: the
    probe measures it slower and picks float32."""
    monkeypatch.setattr(ridge, "PROBE_SHAPES", ridge.PROBE_SHAPES[:1])
    with torch.backends.mkldnn.flags(enabled=False):
        seconds = ridge._probe_gram()
        assert seconds["float32"] < seconds["int8"]
        assert gram_kernel() == "float32"


def test_an_inexact_int8_product_is_never_chosen(monkeypatch):
    """An int8 product whose sums are wrong (oneDNN's without VNNI saturates 16-bit pair sums) is reported
    unusable, however fast it is."""
    real = torch._int_mm
    monkeypatch.setattr(torch, "_int_mm", lambda a, b: real(a, b) + 1)
    seconds = ridge._probe_gram()
    assert seconds["int8"] == "inexact sums here"
    assert gram_kernel() == "float32"


def test_the_choice_is_cached_per_machine_and_logged_once(monkeypatch, capsys, tmp_path):
    """The first use probes and stores the choice under the machine's fingerprint; later uses (a new process:
    forgotten decisions) read it without probing; the log names the choice and the ratio once."""
    monkeypatch.setattr(ridge, "_probe_gram", lambda: {"int8": 3.7, "float32": 0.1})
    assert gram_kernel() == "float32" and gram_kernel() == "float32"
    out = capsys.readouterr().out
    assert out.count("ridge Gram: float32 syrk (int8 (torch._int_mm) measured 37.0x slower here") == 1
    stored = json.loads((tmp_path / "cache" / kernels.CACHE_FILE).read_text())
    assert [v["ridge Gram"]["choice"] for v in stored.values()] == ["float32"]
    kernels.forget()
    monkeypatch.setattr(ridge, "_probe_gram", lambda: pytest.fail("probed again on the same machine"))
    assert gram_kernel() == "float32" and "probed earlier on this machine" in capsys.readouterr().out
    assert chosen()["ridge Gram"] == "float32"


def test_a_piped_log_gets_progress_lines_with_an_eta(monkeypatch, capsys):
    """A step past the silence threshold logs blocks done and an ETA in a piped log (pytest's capture is not
    a terminal), for the Gram's row parts and for the penalties; below the threshold it says nothing."""
    monkeypatch.setattr(ridge, "FLOAT_ROWS", 50)
    (x, y), (xv, yv) = _problem(n=400)
    monkeypatch.setattr(progress, "AFTER_S", 1e9)
    fit_ridge(x, y, xv, yv, 3, gram_kernel="float32", refit=False)
    assert "blocks" not in capsys.readouterr().out
    monkeypatch.setattr(progress, "AFTER_S", 0.0)
    monkeypatch.setattr(progress, "EVERY_S", 0.0)
    fit_ridge(x, y, xv, yv, 3, gram_kernel="float32", refit=False, name="MiniRocket")
    out = capsys.readouterr().out
    assert "ridge Gram (float64 syrk): 1/8 blocks," in out and "s left" in out
    assert "MiniRocket ridge penalties: 1/10 penalties" in out and "at most" in out


def test_machine_info_names_the_cpu_its_flags_and_the_chosen_kernels(monkeypatch):
    monkeypatch.setenv(ridge.GRAM_ENV, "float32")
    gram_kernel()
    info = machine_info()
    assert info["cpu_model"] and info["cores"]["logical"] >= 1 and info["torch"] == torch.__version__
    assert info["kernels"]["ridge Gram"] == "float32" and isinstance(info["cpu_flags"], list)
    json.dumps(info)
    assert info["cpu_model"] in describe_machine(info) and "ridge Gram: float32" in describe_machine(info)


def test_transforms_and_forests_show_progress_in_a_piped_log(monkeypatch, capsys):
    """The baselines' chunked transforms and their forests' fits (grown in warm-started steps: the same trees
    as one fit) log blocks done once past the threshold."""
    from sklearn.ensemble import ExtraTreesClassifier

    import harvit.evaluation.series_models as series

    monkeypatch.setattr(progress, "AFTER_S", 0.0)
    monkeypatch.setattr(progress, "EVERY_S", 0.0)
    monkeypatch.setattr(series, "TRANSFORM_ROWS", 10)
    x = np.random.default_rng(0).normal(size=(35, 2, 8)).astype(np.float32)
    feats = series._in_chunks(lambda w: w.reshape(len(w), -1) * 2, x, "QUANT features")
    assert np.array_equal(feats, x.reshape(35, -1) * 2)
    y = np.arange(35) % 3
    one = ExtraTreesClassifier(n_estimators=25, random_state=1).fit(feats, y)
    grown = series._grow(ExtraTreesClassifier(n_estimators=25, random_state=1), feats, y, "QUANT trees")
    assert np.array_equal(one.predict_proba(feats), grown.predict_proba(feats)) and not grown.warm_start
    out = capsys.readouterr().out
    assert "QUANT features: 20/35 windows" in out and "QUANT trees: 20/25 trees" in out
