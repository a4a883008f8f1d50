"""Window statistics beside the image features: what the images throw away.

Signal images (GAF, MTF at a few dozen pixels) keep the shape of a window but lose exact
levels, spectra and the relation between axes. :class:`WindowStats` computes the built-in
baseline's hand-made features of each window (:func:`harvit.baseline.window_features`: per
channel mean, std, percentiles, energy, band energies, ..., sensor-axis correlations and the
gravity direction; 300 for the 9 HAR channels) and standardises them with a mean and std fitted
on the training windows only. The head sees ``concat(image features, window statistics)``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class WindowStats(nn.Module):
    """Windows [B, C, T] -> standardised statistics [B, F] (float32, clipped to +-10).

    Buffers ``mean`` and ``std`` (float32 [F]) come from :meth:`fit` on training windows and
    travel in the checkpoint.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, channels: list[str], n_features: int) -> None:
        super().__init__()
        self.channels = list(channels)
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))

    @property
    def n_features(self) -> int:
        return int(self.mean.numel())

    @staticmethod
    def raw(x: np.ndarray, channels: list[str]) -> np.ndarray:
        """Unstandardised statistics: float32 [N, F] for windows [N, C, T]."""
        from harvit.baseline import window_features

        return window_features(np.asarray(x, dtype=np.float32), channels)

    @classmethod
    def fit(cls, x_train: np.ndarray, channels: list[str]) -> WindowStats:
        """Fit the standardisation on training windows [N, C, T]."""
        f = cls.raw(x_train, channels).astype(np.float64)
        module = cls(channels, f.shape[1])
        module.mean.copy_(torch.from_numpy(f.mean(0)).float())
        module.std.copy_(torch.from_numpy(np.maximum(f.std(0), 1e-6)).float())
        return module

    @classmethod
    def empty(cls, channels: list[str], length: int) -> WindowStats:
        """An unfitted module of the right size (weights to be loaded from a checkpoint)."""
        return cls(channels, cls.raw(np.zeros((1, len(channels), length), np.float32), channels).shape[1])

    def standardise(self, raw: torch.Tensor) -> torch.Tensor:
        return ((raw - self.mean) / self.std).clamp(-10.0, 10.0)

    def precompute(self, x: np.ndarray, device: torch.device | str) -> torch.Tensor:
        """Standardised statistics of windows [N, C, T] as a tensor [N, F] on ``device``."""
        raw = torch.from_numpy(self.raw(x, self.channels)).to(device)
        return self.standardise(raw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raw = torch.from_numpy(self.raw(x.detach().float().cpu().numpy(), self.channels)).to(x.device)
        return self.standardise(raw)
