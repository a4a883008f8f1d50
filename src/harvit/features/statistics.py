"""Window statistics: the hand-made numbers of each window that images throw away, in torch, on the device.

Signal images (GAF, MTF at a few dozen pixels) keep the shape of a window but lose exact levels,
spectra and the relation between axes. :func:`window_statistics` computes them for windows
[N, C, T], vectorised over windows and signals, on the windows' device; the model's
:class:`WindowStats` standardises them (mean and std fitted on the training windows) and the head
reads ``concat(image features, window statistics)``; the classic baseline
(:mod:`harvit.evaluation.baseline`) fits its models on the same numbers (:func:`window_statistics_array`).

Per signal (the C channels, then the magnitude of every complete x/y/z sensor), 24 values:
mean, std, min, max, percentiles 10/25/50/75/90 (NumPy's default linear interpolation), energy
(mean square), jerk (mean absolute first difference), skewness, kurtosis, autocorrelation at lags
2, 8 and 16 samples, log1p band energies of the power spectrum (6 bands, log-spaced fractions of
Nyquist, no DC; at 50 Hz and 128 samples the bins 0.4, 0.8-1.2, 1.6-3.1, 3.5-6.3, 6.6-12.5,
12.9-25 Hz), dominant frequency (fraction of Nyquist), normalised spectral entropy. Per sensor: the
Pearson correlations xy, xz, yz. Per sensor whose prefix contains ``total``: the gravity direction
(the mean vector, unit length). On the 9-channel HAR windows that is 12 x 24 + 9 + 3 = 300.

Units follow the input (acc in g, gyro in rad/s): mean/std/min/max/percentiles/jerk in the
signal's unit, energy in unit^2, band energies log1p(unit^2); the rest is dimensionless. The model
computes in float64 (equal to the former NumPy implementation within 1e-12 relative) and returns
float32.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from harvit.data.channels import sensor_triples
from harvit.data.signals import CHANNELS
from harvit.features.store import statistics_raw
from harvit.utils.errors import HarvitError

__all__ = ["N_SIGNAL_STATISTICS", "WindowStats", "n_statistics", "window_statistics_array", "window_statistics"]

PERCENTILES = (10.0, 25.0, 50.0, 75.0, 90.0)
BAND_EDGES = (0.0, 1 / 64, 3 / 64, 8 / 64, 16 / 64, 32 / 64, 1.0)
"""Spectrum band edges as fractions of Nyquist; a band holds the bins with lo < f <= hi (no DC)."""
AUTOCORR_LAGS = (2, 8, 16)
"""Autocorrelation lags in samples (at 50 Hz: 40, 160, 320 ms)."""
N_SIGNAL_STATISTICS = 24
"""Statistics per signal (channel or sensor magnitude)."""
_EPS = 1e-8
CHUNK = 4096
"""Windows per call when statistics of many windows are computed at once (bounds the memory)."""


def _gravity_triples(channels: list[str], triples: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """The triples whose sensor prefix contains ``total`` (gravity plus body motion)."""
    return [t for t in triples if "total" in channels[t[0]].rpartition("_")[0]]


def n_statistics(channels: list[str], length: int) -> int:
    """Number F of statistics :func:`window_statistics` gives per window.

    Args:
        channels: C channel names.
        length: T, samples per window (the count does not depend on it; checked to be >= 1).

    Returns:
        ``24 * (C + S) + 3 * S + 3 * G`` with S complete x/y/z sensors and G of them ``total``
        sensors: 300 for the 9 HAR channels.
    """
    if length < 1:
        raise HarvitError(f"window_statistics: windows need at least 1 sample, got length {length}")
    channels = list(channels)
    triples = sensor_triples(channels)
    n_gravity = len(_gravity_triples(channels, triples))
    return N_SIGNAL_STATISTICS * (len(channels) + len(triples)) + 3 * len(triples) + 3 * n_gravity


def _percentile_plan(t: int) -> tuple[list[int], list[int], list[float]]:
    """Lower index, upper index and weight of each percentile of T sorted samples (NumPy 'linear')."""
    lo, hi, gamma = [], [], []
    for q in PERCENTILES:
        virtual = (t - 1) * (q / 100)
        below = math.floor(virtual)
        lo.append(below)
        hi.append(min(below + 1, t - 1))
        gamma.append(virtual - below)
    return lo, hi, gamma


def _band_slices(n_bins: int) -> list[tuple[int, int]]:
    """[start, stop) bin ranges of the 6 spectrum bands over bins 1..n_bins (DC dropped)."""
    freq = np.arange(1, n_bins + 1) / max(n_bins, 1)  # fraction of Nyquist of each bin
    out = []
    for lo, hi in zip(BAND_EDGES[:-1], BAND_EDGES[1:], strict=True):
        idx = np.flatnonzero((freq > lo) & (freq <= hi))
        out.append((int(idx[0]), int(idx[-1]) + 1) if idx.size else (0, 0))
    return out


def _power_spectrum(centred: torch.Tensor) -> torch.Tensor:
    """``|rfft|^2 / T`` of signals [N, S, T] without the DC bin: [N, S, T // 2].

    A product with a real DFT basis rather than ``torch.fft.rfft``: the same values, and it exports to
    ONNX (the TorchScript exporter has no FFT) and runs on any backend.
    """
    t = int(centred.shape[-1])  # a plain int, also while traced for ONNX export (T is fixed per model)
    n = torch.arange(t, dtype=torch.float64, device=centred.device)
    k = torch.arange(1, t // 2 + 1, dtype=torch.float64, device=centred.device)
    angle = (2 * math.pi / t) * k[:, None] * n[None, :]  # [n_bins, T]
    re = centred @ torch.cos(angle).to(centred.dtype).T
    im = centred @ torch.sin(angle).to(centred.dtype).T
    return (re * re + im * im) / t


def _signal_statistics(s: torch.Tensor) -> torch.Tensor:
    """Per-signal statistics of signals [N, S, T] -> [N, S, 24] in the same dtype (see module doc)."""
    t = int(s.shape[-1])  # a plain int while traced: the percentile and band plans are Python arithmetic
    zeros = s.new_zeros(s.shape[:-1])
    # Moments around the first sample: exact zeros for constant signals in float32 too, and no
    # cancellation for signals with a large offset (total_acc near 1 g).
    shifted = s - s[..., :1]
    shift_mean = shifted.mean(-1)
    mean = s[..., 0] + shift_mean
    centred = shifted - shift_mean[..., None]
    sq = centred * centred
    std = sq.mean(-1).sqrt()
    varying = std > _EPS
    safe_std = torch.where(varying, std, torch.ones_like(std))
    skew = torch.where(varying, (sq * centred).mean(-1) / safe_std**3, zeros)
    kurt = torch.where(varying, (sq * sq).mean(-1) / safe_std**4, zeros)
    var = safe_std * safe_std
    autocorr = [torch.where(varying, (centred[..., lag:] * centred[..., :-lag]).mean(-1) / var, zeros)
                if lag < t else zeros for lag in AUTOCORR_LAGS]

    ordered = s.sort(dim=-1).values
    lo, hi, gamma = _percentile_plan(t)
    a = ordered.index_select(-1, torch.tensor(lo, device=s.device))  # [N, S, 5]
    b = ordered.index_select(-1, torch.tensor(hi, device=s.device))
    g = torch.tensor(gamma, dtype=s.dtype, device=s.device)
    diff = b - a
    pct = torch.where(g >= 0.5, b - diff * (1 - g), a + diff * g).unbind(-1)  # NumPy's lerp
    energy = (s * s).mean(-1)
    jerk = (s[..., 1:] - s[..., :-1]).abs().mean(-1) if t > 1 else zeros

    power = _power_spectrum(centred)  # [N, S, n_bins], no DC (the mean is a feature already)
    n_bins = int(power.shape[-1])  # a traced size would make the band edges float32 (off by a bin)
    bands = [torch.log1p(power[..., i:j].sum(-1)) if j > i else zeros for i, j in _band_slices(n_bins)]
    total = power.sum(-1)
    has_power = total > _EPS
    if n_bins:
        peak = power.argmax(-1).to(s.dtype)
        dominant = torch.where(has_power, (peak + 1) / n_bins, zeros)
        p = power / torch.where(has_power, total, torch.ones_like(total))[..., None]
        entropy = -(p * torch.log(torch.where(p > 0, p, torch.ones_like(p)))).sum(-1) / math.log(max(n_bins, 2))
        entropy = torch.where(has_power, entropy, zeros)
    else:
        dominant = entropy = zeros
    feats = [mean, std, ordered[..., 0], ordered[..., -1], *pct, energy, jerk, skew, kurt, *autocorr, *bands,
             dominant, entropy]
    return torch.stack(feats, dim=-1)


def _correlations(x: torch.Tensor, triple: tuple[int, int, int]) -> torch.Tensor:
    """Pearson correlations xy, xz, yz of one sensor of windows [N, C, T]: [N, 3] (0 where constant)."""
    s = x[:, list(triple)]
    shifted = s - s[..., :1]
    c = shifted - shifted.mean(-1, keepdim=True)
    norm = (c * c).sum(-1).sqrt()  # [N, 3]
    out = []
    for i, j in ((0, 1), (0, 2), (1, 2)):
        den = norm[:, i] * norm[:, j]
        ok = den > _EPS
        out.append(torch.where(ok, (c[:, i] * c[:, j]).sum(-1) / torch.where(ok, den, torch.ones_like(den)),
                               torch.zeros_like(den)))
    return torch.stack(out, dim=-1)


def window_statistics(x: torch.Tensor, channels: list[str]) -> torch.Tensor:
    """Hand-made statistics of windows, as the baseline's features (see the module doc).

    Vectorised over windows and signals; runs on the input's device. Computed in float64 when ``x``
    is float64, otherwise in float32 (half, bfloat16 and integer inputs are upcast).

    Args:
        x: float [N, C, T] windows (acc in g, gyro in rad/s), T >= 1 (the lags and bands assume
            T >= 16: shorter windows give zeros for the lags they cannot hold).
        channels: C channel names (``body_acc_x`` ...); sensors are the complete
            ``<prefix>_x/_y/_z`` triples; the gravity direction is given for ``total`` sensors.

    Returns:
        float32 (float64 for float64 input) [N, F], F = :func:`n_statistics`; finite (nan and
        inf are replaced by 0).

    Raises:
        HarvitError: ``x`` is not [N, C, T] real numbers with T >= 1, or ``channels`` does not name C channels.
    """
    if not isinstance(x, torch.Tensor):
        raise HarvitError(f"window_statistics: expected a torch.Tensor of windows [N, C, T], got {type(x).__name__}")
    if x.ndim != 3:
        raise HarvitError(f"window_statistics: expected windows [N, C, T], got shape {list(x.shape)}")
    if x.is_complex():
        raise HarvitError(f"window_statistics: expected real windows [N, C, T], got dtype {x.dtype}")
    channels = list(channels)
    n, c, t = x.shape
    if len(channels) != c:
        raise HarvitError(f"window_statistics: {len(channels)} channel names for {c} channels")
    if t < 1:
        raise HarvitError(f"window_statistics: windows need at least 1 sample, got shape {list(x.shape)}")
    x = x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)
    triples = sensor_triples(channels)
    if n == 0 or c == 0:  # nothing to compute (and MKL's FFT rejects empty batches)
        return x.new_zeros((n, n_statistics(channels, t)))
    signals = [x] + [x[:, list(tr)].square().sum(1, keepdim=True).sqrt() for tr in triples]
    all_signals = torch.cat(signals, dim=1)  # [N, C + S, T]
    parts = [_signal_statistics(all_signals).reshape(n, all_signals.shape[1] * N_SIGNAL_STATISTICS)]
    parts += [_correlations(x, tr) for tr in triples]
    for tr in _gravity_triples(channels, triples):
        s = x[:, list(tr)]
        g = s[..., 0] + (s - s[..., :1]).mean(-1)  # [N, 3] mean vector
        norm = torch.linalg.vector_norm(g, dim=-1, keepdim=True)
        ok = norm > _EPS
        parts.append(torch.where(ok, g / torch.where(ok, norm, torch.ones_like(norm)), torch.zeros_like(g)))
    out = torch.cat(parts, dim=1)
    return torch.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def window_statistics_array(x: np.ndarray, channels: list[str] | None = None) -> np.ndarray:
    """:func:`window_statistics` of NumPy windows, for the classic baseline: float32 [N, F].

    Args:
        x: float [N, C, T] windows (acc in g, gyro in rad/s).
        channels: C channel names; default: the standard 9 HAR channels when C == 9, else unnamed
            (no sensor features).
    """
    x = np.asarray(x)
    if x.ndim != 3:
        raise HarvitError(f"window_statistics_array: expected windows [N, C, T], got shape {list(x.shape)}")
    if channels is None:
        channels = list(CHANNELS) if x.shape[1] == 9 else [f"ch{i}" for i in range(x.shape[1])]
    if len(channels) != x.shape[1]:
        raise HarvitError(f"window_statistics_array: {len(channels)} channel names for {x.shape[1]} channels")
    if not len(x):
        return np.zeros((0, n_statistics(list(channels), x.shape[-1])), np.float32)
    # the numbers WindowStats computes: read from the store where a run computed them for these windows
    return statistics_raw(x, list(channels), lambda c: window_statistics(c, list(channels))).numpy()


class WindowStats(nn.Module):
    """Windows [B, C, T] -> standardised statistics [B, F] (float32, clipped to +-10), on the windows' device.

    Buffers ``mean`` and ``std`` (float32 [F]) come from :meth:`fit` on training windows and travel in
    the checkpoint. The statistics are computed in float64 (exact) and standardised in float32.
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

    @classmethod
    def fit(cls, x_train: np.ndarray, channels: list[str]) -> WindowStats:
        """Fit the standardisation on training windows [N, C, T]."""
        f = statistics_raw(x_train, channels, lambda c: window_statistics(c, list(channels))).numpy()
        f = f.astype(np.float64)
        module = cls(channels, f.shape[1])
        module.mean.copy_(torch.from_numpy(f.mean(0)).float())
        module.std.copy_(torch.from_numpy(np.maximum(f.std(0), 1e-6)).float())
        return module

    @classmethod
    def empty(cls, channels: list[str], length: int) -> WindowStats:
        """An unfitted module of the right size (weights to be loaded from a checkpoint)."""
        return cls(channels, n_statistics(channels, length))

    def standardise(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw statistics [B, F] -> standardised float32 [B, F], clipped to +-10."""
        return ((raw.float() - self.mean) / self.std).clamp(-10.0, 10.0)

    def precompute(self, x: np.ndarray | torch.Tensor, device: torch.device | str) -> torch.Tensor:
        """Standardised statistics of windows [N, C, T] as a tensor [N, F] on ``device``: the same numbers as
        calling the module, each window's raw statistics computed once and kept by :mod:`.store`."""
        x = torch.as_tensor(x)
        if not len(x):
            return torch.zeros(0, self.n_features, device=device)
        raw = statistics_raw(x, self.channels, lambda c: window_statistics(c, self.channels), device=device)
        return self.standardise(raw.to(device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.standardise(window_statistics(x.detach().to(torch.float64), self.channels))
