"""Scaler: fitted global range, clamping, per-window mode, output ranges, state round trip."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from harvit.imaging.scaling import Scaler
from harvit.utils.errors import HarvitError


def _train(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (50, 3, 64)).astype(np.float32)
    x[:, 1] = x[:, 1] * 0.1 + 1.0  # an offset channel (gravity-like)
    x[0, 0, 0] = 1e6  # one wild spike must not set the range
    return x


def test_global_range_is_percentiles_of_training_windows() -> None:
    x = _train()
    s = Scaler.fit(x, q=(1.0, 99.0))
    per_channel = np.moveaxis(x, 1, 0).reshape(3, -1)
    np.testing.assert_allclose(s.lo.numpy(), np.percentile(per_channel, 1.0, axis=1), rtol=1e-5)
    np.testing.assert_allclose(s.hi.numpy(), np.percentile(per_channel, 99.0, axis=1), rtol=1e-5)
    assert s.lo.dtype == s.hi.dtype == torch.float32 and s.lo.shape == (3,)
    assert s.hi[0] < 10  # robust to the spike


def test_global_unit_maps_range_and_clamps() -> None:
    s = Scaler(lo=[0.0, -2.0], hi=[1.0, 2.0])
    x = torch.tensor([[[0.0, 0.5, 1.0, 5.0, -3.0], [-2.0, 0.0, 2.0, 9.0, -9.0]]])
    out = s(x)
    torch.testing.assert_close(out, torch.tensor([[[0.0, 0.5, 1.0, 1.0, 0.0], [0.0, 0.5, 1.0, 1.0, 0.0]]]))


def test_symmetric_range() -> None:
    s = Scaler(lo=[0.0], hi=[4.0], out_range="symmetric")
    out = s(torch.tensor([[[0.0, 1.0, 2.0, 4.0, 8.0]]]))
    torch.testing.assert_close(out, torch.tensor([[[-1.0, -0.5, 0.0, 1.0, 1.0]]]))


def test_global_keeps_offsets_window_mode_removes_them() -> None:
    t = torch.linspace(0, 1, 32)
    x = torch.stack([t, t + 1.0]).unsqueeze(1)  # two windows [2, 1, 32], same shape, offset 1
    glob = Scaler(lo=[0.0], hi=[2.0])
    win = Scaler(lo=[0.0], hi=[2.0], mode="window")
    assert not torch.allclose(glob(x)[0], glob(x)[1])
    torch.testing.assert_close(win(x)[0], win(x)[1])
    assert win(x).amin() == 0.0 and win(x).amax() == 1.0


def test_window_mode_per_channel_and_flat_windows() -> None:
    x = torch.zeros(2, 2, 16)
    x[0, 0] = torch.arange(16.0) * 3 - 5
    x[1, 1] = 7.0  # flat window
    out = Scaler(lo=[0.0, 0.0], hi=[1.0, 1.0], mode="window", out_range="symmetric")(x)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0, 0], torch.linspace(-1, 1, 16))
    torch.testing.assert_close(out[1, 1], torch.zeros(16))  # flat -> middle of the range
    unit = Scaler(lo=[0.0, 0.0], hi=[1.0, 1.0], mode="window")(x)
    torch.testing.assert_close(unit[1, 1], torch.full((16,), 0.5))


def test_flat_training_channel_maps_to_middle() -> None:
    x = np.ones((4, 1, 8), np.float32)
    s = Scaler.fit(x)
    torch.testing.assert_close(s(torch.tensor(x)), torch.full((4, 1, 8), 0.5))


def test_state_dict_round_trip_with_weights_only_load() -> None:
    s = Scaler.fit(_train(), mode="window", out_range="symmetric")
    buf = io.BytesIO()
    torch.save(s.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    back = Scaler.from_state_dict(state)
    assert (back.mode, back.out_range) == ("window", "symmetric")
    torch.testing.assert_close(back.lo, s.lo)
    torch.testing.assert_close(back.hi, s.hi)
    other = Scaler(lo=np.zeros(3), hi=np.ones(3))
    other.load_state_dict(state)
    assert (other.mode, other.out_range) == ("window", "symmetric")
    x = torch.tensor(_train(1))
    torch.testing.assert_close(other(x), s(x))


def test_bad_input_is_a_harvit_error() -> None:
    with pytest.raises(HarvitError, match="--scaling"):
        Scaler.fit(_train(), mode="robust")
    with pytest.raises(HarvitError, match="--scale-range"):
        Scaler.fit(_train(), out_range="wide")
    with pytest.raises(HarvitError, match=r"\[N, C, T\]"):
        Scaler.fit(np.zeros((3, 4), np.float32))
    with pytest.raises(HarvitError, match="NaN"):
        Scaler.fit(np.full((2, 1, 4), np.nan, np.float32))
    with pytest.raises(HarvitError, match="percentiles"):
        Scaler.fit(_train(), q=(99.0, 1.0))


def test_settings_are_tensor_buffers_that_follow_changes() -> None:
    s = Scaler(lo=[0.0], hi=[1.0])
    assert all(isinstance(v, torch.Tensor) for v in s.state_dict().values())
    s.mode, s.out_range = "window", "symmetric"
    back = Scaler.from_state_dict(s.state_dict())
    assert (back.mode, back.out_range) == ("window", "symmetric")
    with pytest.raises(HarvitError, match="--scaling"):
        s.mode = "bogus"
