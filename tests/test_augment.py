"""Signal augmentation: shapes, rigid rotation, determinism, effect."""

from __future__ import annotations

import math

import pytest
import torch

from harvit.data.channels import sensor_triples
from harvit.imaging.augment import augment_batch, lying_weight, quaternion_to_matrix, random_quaternions
from harvit.utils.errors import HarvitError

CHANNELS = [f"{s}_{a}" for s in ("body_acc", "body_gyro", "total_acc") for a in "xyz"]
TRIPLES = sensor_triples(CHANNELS)
ROTATION_ONLY = dict(jitter_std=0.0, scale_std=0.0, max_shift=0.0, rotate=True)


def _x(b: int = 6, t: int = 50) -> torch.Tensor:
    return torch.randn(b, 9, t, generator=torch.Generator().manual_seed(0))


def _norms(x: torch.Tensor) -> torch.Tensor:
    """Per-time-step norm of each triple: [B, 3, T]."""
    return torch.stack([x[:, list(t)].norm(dim=1) for t in TRIPLES], dim=1)


def test_shapes_device_and_input_untouched() -> None:
    x = _x()
    before = x.clone()
    out = augment_batch(x, TRIPLES, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    torch.testing.assert_close(x, before)


def test_rotation_preserves_each_triples_norm() -> None:
    x = _x()
    out = augment_batch(x, TRIPLES, torch.Generator().manual_seed(2), **ROTATION_ONLY)
    torch.testing.assert_close(_norms(out), _norms(x), atol=1e-5, rtol=1e-5)
    assert (out - x).abs().max() > 0.1


def test_one_rotation_per_window_for_all_triples() -> None:
    x = _x()
    x[:, 3:6] = x[:, 0:3]  # gyro = acc: after one shared rotation they must still be equal
    out = augment_batch(x, TRIPLES, torch.Generator().manual_seed(3), **ROTATION_ONLY)
    torch.testing.assert_close(out[:, 3:6], out[:, 0:3])


def test_rotation_matrices_are_proper() -> None:
    like = torch.zeros(1)
    for max_angle in (180.0, 20.0):
        r = quaternion_to_matrix(random_quaternions(64, torch.Generator().manual_seed(4), like, max_angle))
        torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3).expand(64, 3, 3), atol=1e-5, rtol=0)
        torch.testing.assert_close(torch.linalg.det(r), torch.ones(64), atol=1e-5, rtol=0)


def test_max_angle_bounds_the_rotation() -> None:
    like = torch.zeros(1)
    r = quaternion_to_matrix(random_quaternions(256, torch.Generator().manual_seed(5), like, 20.0))
    angle = torch.rad2deg(torch.arccos(((r.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1)))
    assert angle.max() <= 20.0 + 1e-3


def test_deterministic_with_seeded_generator() -> None:
    x = _x()
    a = augment_batch(x, TRIPLES, torch.Generator().manual_seed(7))
    b = augment_batch(x, TRIPLES, torch.Generator().manual_seed(7))
    c = augment_batch(x, TRIPLES, torch.Generator().manual_seed(8))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize(
    "kw",
    [
        dict(jitter_std=0.05, scale_std=0.0, max_shift=0.0, rotate=False),
        dict(jitter_std=0.0, scale_std=0.2, max_shift=0.0, rotate=False),
        dict(jitter_std=0.0, scale_std=0.0, max_shift=0.2, rotate=False),
        ROTATION_ONLY,
    ],
)
def test_each_augmentation_changes_the_data(kw: dict) -> None:
    x = _x()
    out = augment_batch(x, TRIPLES, torch.Generator().manual_seed(9), **kw)
    assert (out - x).abs().max() > 1e-3


def test_all_off_is_identity() -> None:
    x = _x()
    out = augment_batch(x, TRIPLES, None, jitter_std=0.0, scale_std=0.0, max_shift=0.0, rotate=False)
    torch.testing.assert_close(out, x, rtol=0, atol=0)
    assert out is not x


def test_shift_is_a_circular_roll_per_window() -> None:
    x = _x(b=8)
    out = augment_batch(x, TRIPLES, torch.Generator().manual_seed(10), jitter_std=0.0, scale_std=0.0,
                        max_shift=0.2, rotate=False)
    for i in range(8):
        shifts = [s for s in range(-10, 11) if torch.equal(torch.roll(x[i], s, dims=-1), out[i])]
        assert len(shifts) == 1


def test_scale_shares_one_factor_per_sensor() -> None:
    x = _x().abs() + 1.0
    out = augment_batch(x, TRIPLES, torch.Generator().manual_seed(11), jitter_std=0.0, scale_std=0.3,
                        max_shift=0.0, rotate=False)
    ratio = (out / x).mean(dim=-1)  # [B, 9]
    for t in TRIPLES:
        torch.testing.assert_close(ratio[:, list(t)], ratio[:, t[0]:t[0] + 1].expand(-1, 3))
    assert not torch.allclose(ratio[:, 0], ratio[:, 3])


def test_channels_outside_triples_are_not_rotated() -> None:
    x = torch.randn(4, 4, 20)
    out = augment_batch(x, [(0, 1, 2)], torch.Generator().manual_seed(12), **ROTATION_ONLY)
    torch.testing.assert_close(out[:, 3], x[:, 3])


def test_jitter_is_relative_to_channel_std() -> None:
    x = _x(b=64, t=128)
    x[:, 0] *= 100.0
    out = augment_batch(x, TRIPLES, torch.Generator().manual_seed(13), jitter_std=0.1, scale_std=0.0,
                        max_shift=0.0, rotate=False)
    noise = (out - x).std(dim=(0, 2))
    assert math.isclose(noise[0] / noise[1], 100.0, rel_tol=0.1)


def test_bad_arguments() -> None:
    with pytest.raises(HarvitError, match="jitter_std"):
        augment_batch(_x(), TRIPLES, jitter_std=-1.0)
    with pytest.raises(HarvitError, match="triple"):
        augment_batch(_x(), [(0, 1, 99)])


@pytest.mark.gpu
def test_cpu_generator_with_cuda_data_matches_cpu() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    x = _x()
    cpu = augment_batch(x, TRIPLES, torch.Generator().manual_seed(14))
    gpu = augment_batch(x.cuda(), TRIPLES, torch.Generator().manual_seed(14))
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("axis", ["x", "y", "z"])
def test_fixed_axis_rotation_keeps_that_axis_and_the_angle_bound(axis: str) -> None:
    x = _x(b=64)
    k = "xyz".index(axis)
    out = augment_batch(x, TRIPLES, torch.Generator().manual_seed(9), max_angle=180.0, axis=axis, **ROTATION_ONLY)
    for triple in TRIPLES:  # the axis component is untouched, the other two turn in their plane
        torch.testing.assert_close(out[:, triple[k]], x[:, triple[k]])
        assert (out[:, list(triple)] - x[:, list(triple)]).abs().max() > 0.1
    torch.testing.assert_close(_norms(out), _norms(x), atol=1e-5, rtol=1e-5)
    like = torch.zeros(1)
    r = quaternion_to_matrix(random_quaternions(512, torch.Generator().manual_seed(5), like, 30.0, axis))
    angle = torch.rad2deg(torch.arccos(((r.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1)))
    assert angle.max() <= 30.0 + 1e-3 and angle.max() > 25.0
    signed = torch.rad2deg(torch.atan2(r[:, (k + 2) % 3, (k + 1) % 3], r[:, (k + 1) % 3, (k + 1) % 3]))
    assert (signed < -5).any() and (signed > 5).any()  # both directions


def test_unknown_axis_is_one_clear_error() -> None:
    with pytest.raises(HarvitError, match="rotation axis 'w'"):
        augment_batch(_x(), TRIPLES, torch.Generator().manual_seed(1), axis="w")


def test_lying_weight_ramps_with_the_tilt_off_the_x_axis() -> None:
    deg = torch.tensor([0.0, 30.0, 45.0, 60.0, 75.0, 90.0, 150.0, 180.0])
    g = torch.stack([deg.deg2rad().cos(), deg.deg2rad().sin(), torch.zeros(8)], dim=-1) * 9.8
    w = lying_weight(g).squeeze(-1)
    torch.testing.assert_close(w, torch.tensor([0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 0.0, 0.0]), atol=1e-4, rtol=0)


def test_lying_roll_turns_lying_windows_about_x_and_keeps_upright_ones() -> None:
    """Upright (gravity along x): untouched, so the direction of a sitting tilt survives; lying (gravity
    in the y-z plane): rolled about x, so it may lie on any side; |g| and g_x are kept."""
    b, t = 200, 32
    x = 0.1 * torch.randn(b, 9, t, generator=torch.Generator().manual_seed(11))
    gravity = torch.zeros(b, 3)
    gravity[: b // 2] = torch.tensor([0.97, 0.17, 0.17])  # upright, tilted towards +y+z
    gravity[b // 2:] = torch.tensor([0.05, 0.8, 0.6])  # lying
    x[:, 6:9] += gravity.unsqueeze(-1)
    out = augment_batch(x, TRIPLES, torch.Generator().manual_seed(12), max_angle=180.0, axis="lying",
                        gravity=(6, 7, 8), **ROTATION_ONLY)
    torch.testing.assert_close(out[: b // 2], x[: b // 2])
    g_out = out[b // 2:, 6:9].mean(-1)
    g_in = x[b // 2:, 6:9].mean(-1)
    torch.testing.assert_close(g_out.norm(dim=-1), g_in.norm(dim=-1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[b // 2:, [0, 3, 6]], x[b // 2:, [0, 3, 6]])  # every x channel kept
    side = torch.rad2deg(torch.atan2(g_out[:, 2], g_out[:, 1]))
    assert side.min() < -90 and side.max() > 120  # lying on the back, front and both sides


def test_lying_roll_without_gravity_is_one_clear_error() -> None:
    with pytest.raises(HarvitError, match="total_acc"):
        augment_batch(_x(), TRIPLES, torch.Generator().manual_seed(1), axis="lying")
