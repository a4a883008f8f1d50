"""Signal scaling before image encoding.

Image encoders expect signals in ``[-1, 1]`` (GAF reads them as cosines). Two ways to get there:

* ``global`` (default): one robust range per channel, fitted on the *training* windows only
  (the ``q`` percentiles, so a few spikes do not squash everything else). Offsets survive: a
  window lying down keeps a different gravity level than one standing, which is what separates
  the static postures.
* ``window``: each window's channel is min-max scaled on its own (the usual GAF recipe). Shape
  only; the offset is gone.

Output range ``unit`` maps to ``[0, 1]``, ``symmetric`` to ``[-1, 1]``; values are clamped. Note
that GASF on ``[-1, 1]`` cannot tell ``x`` from ``-x`` (``cos(pi - a + pi - b) = cos(a + b)``),
while on ``[0, 1]`` it can.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from harvit.config import SCALE_RANGES, SCALINGS
from harvit.utils.errors import HarvitError

#: ranges narrower than this (in signal units) count as flat and map to the middle of the range
EPS = 1e-6


def _check_choice(flag: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise HarvitError(f"--{flag}: unknown value {value!r}; expected one of {', '.join(choices)}")


def _as_float_vector(v: Any, name: str) -> Tensor:
    t = torch.as_tensor(np.asarray(v, dtype=np.float32))
    if t.ndim != 1:
        raise HarvitError(f"Scaler: {name} must be a vector [C], got shape {list(t.shape)}")
    return t


class Scaler(nn.Module):
    """Map signals [B, C, T] to ``[0, 1]`` or ``[-1, 1]`` per channel.

    Buffers ``lo`` and ``hi`` (float32 [C], signal units) are the fitted per-channel range; they
    are used by ``global`` mode and kept (informative) in ``window`` mode. ``mode`` and
    ``out_range`` travel in the state dict as 0-d bool buffers ``per_window`` and ``symmetric``
    (tensors only: loads with ``torch.load(weights_only=True)``, exports with every ONNX exporter,
    fits safetensors); loading a state dict sets the attributes from them.
    """

    lo: Tensor
    hi: Tensor
    per_window: Tensor
    symmetric: Tensor

    def __init__(self, lo: Sequence[float] | np.ndarray | Tensor, hi: Sequence[float] | np.ndarray | Tensor,
                 mode: str = "global", out_range: str = "unit") -> None:
        super().__init__()
        _check_choice("scaling", mode, SCALINGS)
        _check_choice("scale-range", out_range, SCALE_RANGES)
        lo_t, hi_t = _as_float_vector(lo, "lo"), _as_float_vector(hi, "hi")
        if lo_t.shape != hi_t.shape:
            raise HarvitError(f"Scaler: lo has {lo_t.numel()} channels but hi has {hi_t.numel()}")
        self.register_buffer("lo", lo_t)
        self.register_buffer("hi", hi_t)
        self.register_buffer("per_window", torch.tensor(mode == "window"))
        self.register_buffer("symmetric", torch.tensor(out_range == "symmetric"))
        self._mode = mode
        self._out_range = out_range
        self.register_load_state_dict_post_hook(_settings_from_buffers)

    @property
    def mode(self) -> str:
        """``global`` or ``window`` (mirrors the ``per_window`` buffer)."""
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        _check_choice("scaling", value, SCALINGS)
        self._mode = value
        self.per_window.fill_(value == "window")

    @property
    def out_range(self) -> str:
        """``unit`` or ``symmetric`` (mirrors the ``symmetric`` buffer)."""
        return self._out_range

    @out_range.setter
    def out_range(self, value: str) -> None:
        _check_choice("scale-range", value, SCALE_RANGES)
        self._out_range = value
        self.symmetric.fill_(value == "symmetric")

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def fit(cls, x: np.ndarray | Tensor, mode: str = "global", out_range: str = "unit",
            q: tuple[float, float] = (0.1, 99.9)) -> Scaler:
        """Fit the per-channel range on training windows.

        Args:
            x: float [N, C, T] training windows only (never validation or test).
            mode: ``global`` | ``window``.
            out_range: ``unit`` ([0, 1]) | ``symmetric`` ([-1, 1]).
            q: lower and upper percentiles (0..100) of all N*T values of a channel.

        Returns:
            A scaler with ``lo``/``hi`` [C] set to those percentiles.
        """
        _check_choice("scaling", mode, SCALINGS)
        _check_choice("scale-range", out_range, SCALE_RANGES)
        if isinstance(x, Tensor):
            x = x.detach().cpu().numpy()
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[0] == 0 or x.shape[2] == 0:
            raise HarvitError(
                f"Scaler.fit: expected training windows [N, C, T] with N, T > 0, got {list(x.shape)}")
        if not np.isfinite(x).all():
            raise HarvitError("Scaler.fit: training windows contain NaN/Inf")
        q_lo, q_hi = float(q[0]), float(q[1])
        if not 0.0 <= q_lo < q_hi <= 100.0:
            raise HarvitError(f"Scaler.fit: percentiles q={q!r}; expected 0 <= low < high <= 100")
        per_channel = np.moveaxis(x, 1, 0).reshape(x.shape[1], -1).astype(np.float64)
        lo, hi = np.percentile(per_channel, [q_lo, q_hi], axis=1)
        return cls(lo, hi, mode=mode, out_range=out_range)

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Scaler:
        """Rebuild a scaler from :meth:`state_dict` output (keys ``lo``, ``hi``, ``per_window``,
        ``symmetric``)."""
        try:
            scaler = cls(state["lo"], state["hi"])
        except KeyError as e:
            raise HarvitError(f"Scaler state: missing entry {e.args[0]!r}") from None
        scaler.load_state_dict(state)
        return scaler

    # ---- state ----------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return f"channels={self.lo.numel()}, mode={self.mode}, out_range={self.out_range}"

    # ---- forward --------------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        """Scale signals.

        Args:
            x: float [B, C, T] signals in their units (g, rad/s).

        Returns:
            [B, C, T] in ``[0, 1]`` (unit) or ``[-1, 1]`` (symmetric), same dtype and device as x.
            A flat range (narrower than ``EPS``) maps to the middle of the output range.
        """
        if self.mode == "window":
            lo = x.amin(dim=-1, keepdim=True)
            hi = x.amax(dim=-1, keepdim=True)
        else:
            lo = self.lo.to(x.dtype)[:, None]
            hi = self.hi.to(x.dtype)[:, None]
        unit = _to_unit(x, lo, hi)
        return unit * 2.0 - 1.0 if self.out_range == "symmetric" else unit


def _settings_from_buffers(module: nn.Module, incompatible_keys: Any) -> None:
    """After ``load_state_dict``: the Python-side settings follow the loaded flag buffers."""
    module._mode = "window" if bool(module.per_window) else "global"
    module._out_range = "symmetric" if bool(module.symmetric) else "unit"


def _to_unit(x: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """``(x - lo) / (hi - lo)`` clamped to [0, 1]; 0.5 where ``hi - lo < EPS``. Shapes broadcast."""
    span = hi - lo
    flat = span < EPS
    scale = torch.where(flat, torch.zeros_like(span), 1.0 / span.clamp_min(EPS))
    offset = torch.where(flat, torch.full_like(span, 0.5), torch.zeros_like(span))
    return ((x - lo) * scale + offset).clamp(0.0, 1.0)
