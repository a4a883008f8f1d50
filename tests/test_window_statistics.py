"""Window statistics in torch (:mod:`harvit.features.statistics`) against the NumPy code they replaced.

Reference: ``tests/reference_statistics.py``, the former NumPy implementation, in float64. The float64
torch path (what the model and the baseline use) must match it within ``1e-5 * (1 + |ref|)`` per
element; it was measured within 4e-13 on all 10411 hapt6 windows. The float32 path was measured
within 3.9e-5 on the same windows (worst: skewness of the total_acc magnitude), with no
dominant-frequency bin flips; it is tested against ``2e-4 * (1 + |ref|)``.

Everything runs on the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reference_statistics import window_features

from harvit.features.statistics import WindowStats, n_statistics, window_statistics, window_statistics_array
from harvit.utils.errors import HarvitError

TOL64 = 1e-5
TOL32 = 2e-4
HAR = ["body_acc_x", "body_acc_y", "body_acc_z", "body_gyro_x", "body_gyro_y", "body_gyro_z",
       "total_acc_x", "total_acc_y", "total_acc_z"]


def _rel_err(got: torch.Tensor, ref: np.ndarray) -> np.ndarray:
    """|got - ref| / (1 + |ref|) per element."""
    ref64 = ref.astype(np.float64)
    return np.abs(got.double().numpy() - ref64) / (1 + np.abs(ref64))


def _assert_matches(x: np.ndarray, channels: list[str]) -> tuple[float, float]:
    """torch float64 and float32 statistics of ``x`` against NumPy; returns the two max errors."""
    ref = window_features(x, channels)
    xt = torch.from_numpy(np.ascontiguousarray(x))
    out64 = window_statistics(xt.double(), channels)
    out32 = window_statistics(xt.float(), channels)
    assert out64.dtype == torch.float64 and out32.dtype == torch.float32
    assert out64.shape == out32.shape == ref.shape == (len(x), n_statistics(channels, x.shape[-1]))
    assert torch.isfinite(out64).all() and torch.isfinite(out32).all()
    e64, e32 = _rel_err(out64, ref), _rel_err(out32, ref)
    assert e64.max(initial=0.0) <= TOL64, f"float64 max rel error {e64.max():.3g}"
    assert e32.max(initial=0.0) <= TOL32, f"float32 max rel error {e32.max():.3g}"
    return float(e64.max(initial=0.0)), float(e32.max(initial=0.0))


@pytest.fixture(scope="module")
def hapt6_windows(hapt6_real) -> tuple[np.ndarray, list[str]]:
    """The first 2000 hapt6 training windows plus all test windows, float32 [N, 9, 128]."""
    x = np.concatenate([hapt6_real.train.x[:2000], hapt6_real.test.x])
    return x, list(hapt6_real.train.channels)


def test_real_hapt6_matches_numpy(hapt6_windows):
    x, channels = hapt6_windows
    assert channels == HAR
    e64, e32 = _assert_matches(x, channels)
    print(f"hapt6 {len(x)} windows: max rel error float64 {e64:.3g}, float32 {e32:.3g}")


def _synthetic(n: int, c: int, t: int, seed: int) -> np.ndarray:
    """Noisy sines with per-channel offsets and scales: float32 [n, c, t]."""
    rng = np.random.default_rng(seed)
    time = np.arange(t) / 50.0
    freq = rng.uniform(0.3, 12.0, size=(n, c, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, c, 1))
    x = rng.uniform(0.1, 2.0, size=(n, c, 1)) * np.sin(2 * np.pi * freq * time + phase)
    x += rng.normal(scale=0.3, size=(n, c, t)) + rng.normal(scale=1.0, size=(n, c, 1))
    return x.astype(np.float32)


SYNTHETIC_CHANNELS = {
    "acc3": ["acc_x", "acc_y", "acc_z"],  # one sensor, no gravity
    "acc_gyro6": ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"],
    "one": ["ppg"],
    "mixed": ["total_acc_z", "ppg", "total_acc_x", "mag_x", "total_acc_y", "mag_Y"],  # gravity; mag incomplete
    "wide64": [f"s{i}_{a}" for i in range(21) for a in "xyz"] + ["temp"],
}


@pytest.mark.parametrize("t", [16, 17, 200])
@pytest.mark.parametrize("name", list(SYNTHETIC_CHANNELS))
def test_synthetic_channel_sets_match_numpy(name, t):
    channels = SYNTHETIC_CHANNELS[name]
    x = _synthetic(24, len(channels), t, seed=len(channels) * 1000 + t)
    _assert_matches(x, channels)


def test_feature_counts():
    assert n_statistics(HAR, 128) == 300
    assert n_statistics(SYNTHETIC_CHANNELS["acc3"], 16) == 24 * 4 + 3
    assert n_statistics(SYNTHETIC_CHANNELS["acc_gyro6"], 16) == 24 * 8 + 6
    assert n_statistics(SYNTHETIC_CHANNELS["one"], 16) == 24
    assert n_statistics(SYNTHETIC_CHANNELS["mixed"], 16) == 24 * 7 + 3 + 3
    assert n_statistics(SYNTHETIC_CHANNELS["wide64"], 16) == 24 * 85 + 63


@pytest.mark.parametrize("t", [1, 2, 5])
def test_very_short_windows_match_numpy(t):
    _assert_matches(_synthetic(5, 9, t, seed=t), HAR)


@pytest.mark.parametrize("t", [16, 128, 200])
@pytest.mark.parametrize("value", [0.0, 1.0, -3.5, 0.1])
def test_constant_windows_give_finite_zeros(value, t):
    x = np.full((3, 9, t), value, np.float32)
    x[1, 6:] = np.array([0.3, -0.9, 0.2], np.float32)[:, None]  # a gravity direction
    ref = window_features(x, HAR)
    for dtype in (torch.float64, torch.float32):
        out = window_statistics(torch.from_numpy(x).to(dtype), HAR)
        assert torch.isfinite(out).all()
        got = out.double().numpy()
        assert np.array_equal(got[ref == 0], np.zeros(int((ref == 0).sum()))), dtype  # exact zeros
        assert np.allclose(got, ref, rtol=0, atol=TOL64 * (1 + np.abs(ref).max()))


def test_constant_channels_inside_varying_windows():
    x = _synthetic(6, 9, 128, seed=3)
    x[:, 1] = 0.25  # body_acc_y constant: its std, skew, ... and its correlations are 0
    x[2, 3:6] = 0.0  # a resting gyro in one window
    _assert_matches(x, HAR)


def test_windows_are_independent_and_dtypes():
    x = torch.from_numpy(_synthetic(5, 9, 64, seed=7))
    full = window_statistics(x, HAR)
    for i in range(len(x)):  # the same numbers alone as in a batch (to float32 rounding: BLAS blocks by batch size)
        torch.testing.assert_close(window_statistics(x[i:i + 1], HAR)[0], full[i], rtol=1e-6, atol=1e-6)
    changed = x.clone()
    changed[1:] = changed[1:] * 3.0 + 1.0  # other windows change; window 0's statistics do not
    torch.testing.assert_close(window_statistics(changed, HAR)[0], full[0], rtol=1e-6, atol=1e-6)
    assert window_statistics(x.half(), HAR).dtype == torch.float32
    assert window_statistics(x.bfloat16(), HAR).dtype == torch.float32
    assert window_statistics(x[:0], HAR).shape == (0, 300)
    assert window_statistics(x[:, :0], []).shape == (5, 0)
    nan = x.clone()
    nan[0, 0, 3] = float("nan")
    nan[1, 7, 0] = float("inf")
    assert torch.isfinite(window_statistics(nan, HAR)).all()


def test_the_model_and_the_baseline_read_the_same_statistics(hapt6_windows):
    """WindowStats (the model) standardises exactly the numbers the baseline fits on."""
    x, channels = hapt6_windows
    x = x[:500]
    module = WindowStats.fit(x, channels)
    raw = window_statistics_array(x, channels)
    want = ((torch.from_numpy(raw) - module.mean) / module.std).clamp(-10, 10)
    torch.testing.assert_close(module(torch.from_numpy(x)), want, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(module.precompute(x, "cpu"), want, rtol=1e-6, atol=1e-6)
    ref = window_features(x, channels)
    assert np.abs(raw - ref).max() <= TOL64 * (1 + np.abs(ref)).max()


def test_bad_inputs_raise_one_line_errors():
    with pytest.raises(HarvitError, match=r"N, C, T.*\[9, 128\]") as err:
        window_statistics(torch.zeros(9, 128), HAR)
    assert "\n" not in str(err.value)
    with pytest.raises(HarvitError, match="N, C, T"):
        window_statistics(torch.zeros(1, 1, 9, 128), HAR)
    with pytest.raises(HarvitError, match="3 channel names for 9 channels"):
        window_statistics(torch.zeros(2, 9, 16), HAR[:3])
    with pytest.raises(HarvitError, match="repeats axis"):
        window_statistics(torch.zeros(2, 2, 16), ["a_x", "a_X"])
    with pytest.raises(HarvitError, match="at least 1 sample"):
        window_statistics(torch.zeros(2, 9, 0), HAR)
    with pytest.raises(HarvitError, match="torch.Tensor"):
        window_statistics(np.zeros((2, 9, 16)), HAR)  # type: ignore[arg-type]
    with pytest.raises(HarvitError, match="real windows"):
        window_statistics(torch.zeros(2, 9, 16, dtype=torch.complex64), HAR)
