"""The imager: windows [B, C, T] -> the images of their views, on the device (scaling + encodings)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from harvit.imaging.encodings import check_encodings, encode, encoding_settings
from harvit.imaging.scaling import Scaler
from harvit.imaging.views import view_groups
from harvit.utils.errors import HarvitError


class SignalImager(nn.Module):
    """Windows -> images of one view each, on whatever device the windows are.

    Attributes:
        groups: V lists of K channel indices (:func:`harvit.imaging.views.view_groups`).
        n_views: V.
        in_chans: K * E, the image channels the encoder sees.
        view_index: int64 buffer [V, K] (not saved; rebuilt from channels and mode).
        scaler: the :class:`harvit.scaling.Scaler` (its buffers are in the state dict).
        settings: the values of the run settings its encodings read, by name (``{"mtf_bins": 8}`` with mtf).
    """

    view_index: Tensor

    def __init__(self, channels: list[str], mode: str, encodings: list[str], img_size: int, scaler: Scaler,
                 settings: Mapping[str, Any] | None = None) -> None:
        """``settings``: the values of the run settings the encodings read (:func:`encoding_settings`, e.g.
        ``{"mtf_bins": 8}``; checked by :meth:`harvit.config.Config.validate`); one left out takes its default."""
        super().__init__()
        self.encodings = check_encodings(encodings)
        if img_size < 1:
            raise HarvitError(f"--img-size: got {img_size!r}, expected a positive number of pixels")
        if scaler.lo.numel() != len(channels):
            raise HarvitError(
                f"scaler: fitted on {scaler.lo.numel()} channels but the data has {len(channels)}")
        self.channels = list(channels)
        self.mode = mode
        self.groups = view_groups(self.channels, mode)
        self.n_views = len(self.groups)
        self.k = len(self.groups[0])
        self.in_chans = self.k * len(self.encodings)
        self.img_size = img_size
        self.settings = encoding_settings(self.encodings, settings or {})
        self.scaler = scaler
        self.register_buffer("view_index", torch.tensor(self.groups, dtype=torch.int64), persistent=False)

    def _encode(self, signals: Tensor) -> Tensor:
        return encode(signals, self.encodings, self.img_size, self.settings)

    def forward(self, x: Tensor, view: Tensor) -> Tensor:
        """Images of one view per window.

        Args:
            x: float [B, C, T] windows (signal units).
            view: int64 [B], each window's view in ``0..V-1``.

        Returns:
            [B, in_chans, S, S].
        """
        scaled = self.scaler(x)
        idx = self.view_index[view]  # [B, K]
        signals = scaled.gather(1, idx.unsqueeze(-1).expand(-1, -1, scaled.shape[-1]))  # [B, K, T]
        return self._encode(signals)

    def all_views(self, x: Tensor) -> Tensor:
        """Images of every view of every window, window-major.

        Args:
            x: float [B, C, T].

        Returns:
            [B*V, in_chans, S, S]; row ``w*V + v`` is window w, view v.
        """
        scaled = self.scaler(x)
        signals = scaled[:, self.view_index]  # [B, V, K, T]
        return self._encode(signals.reshape(-1, self.k, scaled.shape[-1]))

    def extra_repr(self) -> str:
        return (f"mode={self.mode}, views={self.n_views}, in_chans={self.in_chans}, "
                f"img_size={self.img_size}, encodings={','.join(self.encodings)}")
