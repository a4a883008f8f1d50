"""Random-convolution features in torch (harvit.features.rocket) against aeon's MiniRocket, and in the model."""

import numpy as np
import pytest
import torch
from helpers_runs import synthetic_dataset, train_tiny_run

import harvit.features.rocket as rk
from harvit.features.rocket import N_KERNELS, RocketFeatures, rocket_dilations


def _windows(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.normal(size=(n, 9, 128)).cumsum(-1) + rng.normal(size=(n, 9, 1))).astype(np.float32)


def test_torch_features_match_aeon_minirocket():
    aeon = pytest.importorskip("aeon.transformations.collection.convolution_based")
    x = _windows(40)
    ref_tf = aeon.MiniRocket(n_kernels=1680, random_state=3).fit(x[:30])
    want = ref_tf.transform(x[30:])
    module = RocketFeatures.from_aeon(ref_tf.parameters, 9, 128)
    got = module.ppv(torch.from_numpy(x[30:])).numpy()
    assert got.shape == want.shape == (10, 1680)
    # the same counts, but where a convolution output lies within float rounding of a bias: the two
    # implementations sum the taps in other orders, so such a step may count on one side only
    off = np.abs(got - want)
    assert off.max() <= 1 / 128 + 1e-6 and (off > 0).mean() <= 1e-3
    assert module(torch.from_numpy(x[30:])).shape == (10, 1680)  # identity standardisation


def test_dilations_and_fit_follow_minirocket_rules():
    dil, per = rocket_dilations(128, 9996)
    assert dil[0] == 1 and dil[-1] == 15 and sum(per) == 9996 // N_KERNELS
    x = _windows(64)
    a, b = RocketFeatures.fit(x, 840, seed=5), RocketFeatures.fit(x, 840, seed=5)
    assert a.n_features == 840 and torch.equal(a.biases, b.biases) and torch.equal(a.channel_mask, b.channel_mask)
    counts = a.channel_mask.sum(1)
    assert counts.min() >= 1 and counts.max() <= 9
    f = a.ppv(torch.from_numpy(x))
    assert f.shape == (64, 840) and float(f.min()) >= 0 and float(f.max()) <= 1
    assert float(f.std(0).mean()) > 0.05  # biases inside the outputs' range: the features vary


def test_sorted_and_compare_paths_agree(monkeypatch):
    conv, bias = torch.randn(5, 84, 40), torch.randn(84, 3)
    fast = rk._share_above(conv, bias)
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    assert torch.equal(fast, rk._share_above(conv, bias))


def test_model_with_rocket_branch_trains_loads_and_exports(tmp_path):
    pytest.importorskip("onnxruntime")
    from harvit.deploy.export import export_onnx
    from harvit.models.loading import load_trained
    from harvit.utils.errors import HarvitError

    ds = synthetic_dataset(120, 40)
    run = train_tiny_run(tmp_path, ds, rocket_features=168, epochs=1)
    tm = load_trained(run)
    assert tm.model.stats.n_features == 300 + 168
    x = torch.from_numpy(ds.test.x[:4])
    info = export_onnx(tm, tmp_path / "m.onnx")
    assert info["rocket_features"]["n_features"] == 168 and info["verified"]["max_abs_diff"] <= 1e-4
    assert tm.model(x).shape == (4, 4)
    with pytest.raises(HarvitError, match="random-convolution"):
        export_onnx(tm, tmp_path / "i.onnx", what="images")
    # convolution features alone: no images, no statistics
    alone = train_tiny_run(tmp_path / "alone", ds, rocket_features=168, epochs=1, images=False, window_stats=False)
    assert load_trained(alone).model.stats.n_features == 168
