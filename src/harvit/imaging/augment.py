"""Signal augmentation of window batches, on the device, without a loop over samples.

:func:`augment_batch` applies, in this order (each step batched over all windows):

1. one random 3-D rotation per window, applied to every x/y/z sensor triple of that window (the
   phone turns as one rigid body, so accelerometer and gyroscope turn together), about a random
   axis or about one fixed sensor axis;
2. magnitude scaling: one factor ``1 + scale_std * N(0, 1)`` per window and sensor (a triple
   shares its factor; a channel outside any triple gets its own);
3. a circular time shift of up to ``max_shift * T`` samples either way, per window;
4. Gaussian jitter with standard deviation ``jitter_std`` times each channel's standard deviation
   (measured over the batch and time).

Random numbers are drawn on the generator's device (so a CPU generator gives the same draws for
CPU and CUDA data) and moved to the data's device.

Note: a rotation drawn uniformly over all of SO(3) (``max_angle=180``) also turns gravity in
``total_acc`` to any direction, which is the main cue separating sitting, standing and lying;
pass a smaller ``max_angle`` (e.g. 15-30 degrees) to keep that cue, or turn about one axis only.
For a waist-worn phone (UCI HAR, HAPT) the x axis points along the body: turning about x keeps the
angle between gravity and the body axis (upright or lying) and changes only the heading of an
upright phone, or which side a lying person lies on.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from harvit.config import AUGMENT_AXES
from harvit.utils.errors import HarvitError


def _randn(shape: tuple[int, ...], generator: torch.Generator | None, like: Tensor) -> Tensor:
    device = generator.device if generator is not None else like.device
    return torch.randn(shape, generator=generator, device=device).to(device=like.device, dtype=like.dtype)


def _rand(shape: tuple[int, ...], generator: torch.Generator | None, like: Tensor) -> Tensor:
    device = generator.device if generator is not None else like.device
    return torch.rand(shape, generator=generator, device=device).to(device=like.device, dtype=like.dtype)


def _about_axis(angle: Tensor, axis: int) -> Tensor:
    """Unit quaternions [n, 4] turning by ``angle`` [n, 1] radians about sensor axis 0, 1 or 2."""
    half = angle / 2.0
    unit = torch.zeros((angle.shape[0], 3), device=angle.device, dtype=angle.dtype)
    unit[:, axis] = 1.0
    return torch.cat((half.cos(), half.sin() * unit), dim=-1)


def lying_weight(gravity: Tensor, onset: float = 45.0, full: float = 75.0) -> Tensor:
    """How much a window is lying down, from its mean gravity vector [n, 3] in sensor axes.

    The tilt is the angle between gravity and the x axis, upside down counting as upright
    (``arccos(|g_x| / |g|)``, 0..90 degrees). The weight is 0 up to ``onset`` degrees, 1 from
    ``full`` degrees, linear between. Returns [n, 1].
    """
    norm = gravity.norm(dim=-1).clamp_min(1e-12)
    tilt = torch.rad2deg(torch.arccos((gravity[:, 0].abs() / norm).clamp(0.0, 1.0)))
    return ((tilt - onset) / (full - onset)).clamp(0.0, 1.0).unsqueeze(-1)


def random_quaternions(n: int, generator: torch.Generator | None, like: Tensor, max_angle: float = 180.0,
                       axis: str = "any", gravity: Tensor | None = None) -> Tensor:
    """Random unit quaternions ``(w, x, y, z)`` [n, 4].

    ``axis="any"``: with ``max_angle >= 180`` uniform over SO(3) (a normalised 4-D Gaussian),
    otherwise a uniform random axis and an angle uniform in ``[0, max_angle]`` degrees.
    ``axis`` "x", "y" or "z": turns about that sensor axis by an angle uniform in
    ``[-max_angle, max_angle]`` degrees. ``axis="lying"``: about x, the angle scaled by
    :func:`lying_weight` of ``gravity`` [n, 3] (each window's mean ``total_acc``), so an upright
    window keeps its tilt direction (the sitting/standing cue) and a lying one may lie on any side.
    """
    if axis not in AUGMENT_AXES:
        raise HarvitError(f"augment: rotation axis {axis!r}; expected one of {', '.join(AUGMENT_AXES)}")
    if axis != "any":
        angle = (_rand((n, 1), generator, like) * 2.0 - 1.0) * math.radians(max_angle)
        if axis == "lying":
            if gravity is None:
                raise HarvitError("augment: rotation axis 'lying' needs a total_acc x/y/z sensor (gravity)")
            angle = angle * lying_weight(gravity.to(angle))
        return _about_axis(angle, "xyz".index("x" if axis == "lying" else axis))
    if max_angle >= 180.0:
        q = _randn((n, 4), generator, like)
        return q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    axis = _randn((n, 3), generator, like)
    axis = axis / axis.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    half = _rand((n, 1), generator, like) * (math.radians(max_angle) / 2.0)
    return torch.cat((half.cos(), half.sin() * axis), dim=-1)


def quaternion_to_matrix(q: Tensor) -> Tensor:
    """Unit quaternions ``(w, x, y, z)`` [n, 4] -> rotation matrices [n, 3, 3]."""
    w, x, y, z = q.unbind(-1)
    rows = (
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    )
    return torch.stack(rows, dim=-1).view(-1, 3, 3)


def rotate_triples(x: Tensor, triples: list[tuple[int, int, int]], rot: Tensor) -> Tensor:
    """Rotate every sensor triple of each window by that window's matrix.

    Args:
        x: [B, C, T].
        triples: P channel index triples ``(x, y, z)``.
        rot: [B, 3, 3] rotation per window.

    Returns:
        [B, C, T], a new tensor; channels outside the triples are copied unchanged.
    """
    if not triples:
        return x.clone()
    b, c, t = x.shape
    idx = torch.tensor(triples, dtype=torch.int64, device=x.device)  # [P, 3]
    vec = x[:, idx]  # [B, P, 3, T]
    turned = torch.einsum("bij,bpjt->bpit", rot, vec)
    out = x.clone()
    out[:, idx.reshape(-1)] = turned.reshape(b, -1, t)
    return out


def _sensor_of_channel(n_channels: int, triples: list[tuple[int, int, int]]) -> list[int]:
    """Channel -> sensor id: a triple's three channels share one id, every other channel has its own."""
    owner = list(range(n_channels))
    for i, triple in enumerate(triples):
        for ch in triple:
            owner[ch] = n_channels + i
    ids = {v: j for j, v in enumerate(dict.fromkeys(owner))}
    return [ids[v] for v in owner]


def _check(triples: list[tuple[int, int, int]], n_channels: int, **params: float) -> None:
    for name, value in params.items():
        if value < 0:
            raise HarvitError(f"augment: {name}={value!r}; expected >= 0")
    for triple in triples:
        if len(triple) != 3 or not all(0 <= ch < n_channels for ch in triple) or len(set(triple)) != 3:
            raise HarvitError(
                f"augment: sensor triple {triple!r} is not 3 distinct channels of 0..{n_channels - 1}")


def augment_batch(
    x: Tensor,
    triples: list[tuple[int, int, int]],
    generator: torch.Generator | None = None,
    jitter_std: float = 0.01,
    scale_std: float = 0.1,
    max_shift: float = 0.1,
    rotate: bool = True,
    max_angle: float = 180.0,
    axis: str = "any",
    gravity: tuple[int, int, int] | None = None,
) -> Tensor:
    """Randomly perturb a batch of windows (see the module docstring for the steps).

    Args:
        x: float [B, C, T] windows in signal units, on any device.
        triples: x/y/z channel triples to rotate (:func:`harvit.data.channels.sensor_triples`).
        generator: source of randomness (any device); None uses torch's global generator.
        jitter_std: noise std relative to each channel's std (0: off).
        scale_std: std of the per-sensor magnitude factor around 1 (0: off).
        max_shift: largest circular shift as a fraction of T (0: off).
        rotate: apply one random rotation per window to all triples.
        max_angle: largest rotation angle in degrees; >= 180 with ``axis="any"`` draws uniformly
            over SO(3).
        axis: "any" (a random axis per window), a fixed sensor axis "x", "y" or "z", or "lying"
            (about x, lying windows only; see :func:`random_quaternions`).
        gravity: channel triple of ``total_acc`` (needed by ``axis="lying"``).

    Returns:
        [B, C, T], a new tensor on x's device (x is not modified).
    """
    b, c, t = x.shape
    _check(triples, c, jitter_std=jitter_std, scale_std=scale_std, max_shift=max_shift, max_angle=max_angle)
    out = x
    if rotate and triples:
        g = x[:, list(gravity)].mean(-1) if axis == "lying" and gravity is not None else None  # [B, 3]
        rot = quaternion_to_matrix(random_quaternions(b, generator, x, max_angle, axis, g))
        out = rotate_triples(out, triples, rot)
    if scale_std > 0:
        owner = _sensor_of_channel(c, triples)
        sensor = torch.tensor(owner, device=x.device)
        factor = 1.0 + scale_std * _randn((b, max(owner) + 1), generator, x)  # [B, sensors]
        out = out * factor[:, sensor].unsqueeze(-1)
    shift_max = int(max_shift * t)
    if shift_max > 0:
        dev = generator.device if generator is not None else x.device
        shift = torch.randint(-shift_max, shift_max + 1, (b, 1), generator=generator, device=dev).to(x.device)
        src = (torch.arange(t, device=x.device) - shift) % t  # [B, T]: out[t'] = in[t' - shift]
        out = out.gather(2, src.unsqueeze(1).expand(b, c, t))
    if jitter_std > 0:
        std = x.std(dim=(0, 2), keepdim=True) if b * t > 1 else torch.zeros_like(x[:1, :, :1])
        out = out + jitter_std * std * _randn((b, c, t), generator, x)
    return out if out is not x else x.clone()
