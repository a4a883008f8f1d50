"""The former NumPy implementation of the window statistics, kept as the tests' oracle.

harvit computes the statistics in torch (:mod:`harvit.features.statistics`); this is the NumPy code
it replaced, unchanged but for its imports and its float64 output
(it rounded to float32), so the tests can check that the torch values equal it.
"""

from __future__ import annotations

import numpy as np

from harvit.data.channels import sensor_triples
from harvit.data.signals import CHANNELS
from harvit.utils.errors import HarvitError

BAND_EDGES = (0.0, 1 / 64, 3 / 64, 8 / 64, 16 / 64, 32 / 64, 1.0)
"""Spectrum band edges as fractions of Nyquist; a band holds the bins with lo < f <= hi (no DC)."""


AUTOCORR_LAGS = (2, 8, 16)
"""Autocorrelation lags in samples (at 50 Hz: 40, 160, 320 ms)."""


_EPS = 1e-8


def _sensors(channels: list[str]) -> list[tuple[str, tuple[int, int, int]]]:
    """(prefix, (ix, iy, iz)) of every complete x/y/z sensor, in channel order."""
    return [(channels[t[0]].rpartition("_")[0], t) for t in sensor_triples(channels)]


def signal_features(s: np.ndarray) -> np.ndarray:
    """Per-signal statistics.

    Args:
        s: float [N, S, T] signals.

    Returns:
        float32 [N, S, 24]: mean, std, min, max, p10, p25, p50, p75, p90, energy, jerk, skew,
        kurtosis, 3 autocorrelations, 6 log band energies, dominant frequency (fraction of
        Nyquist), spectral entropy.
    """
    s = s.astype(np.float64, copy=False)
    t = s.shape[-1]
    mean = s.mean(-1)
    std = s.std(-1)
    pct = np.percentile(s, [10, 25, 50, 75, 90], axis=-1)  # [5, N, S]
    energy = (s * s).mean(-1)
    jerk = np.abs(np.diff(s, axis=-1)).mean(-1) if t > 1 else np.zeros_like(mean)
    centred = s - mean[..., None]
    safe_std = np.where(std > _EPS, std, 1.0)
    skew = np.where(std > _EPS, (centred**3).mean(-1) / safe_std**3, 0.0)
    kurt = np.where(std > _EPS, (centred**4).mean(-1) / safe_std**4, 0.0)
    var = np.where(std > _EPS, safe_std**2, 1.0)
    autocorr = [np.where(std > _EPS, (centred[..., lag:] * centred[..., :-lag]).mean(-1) / var, 0.0)
                if lag < t else np.zeros_like(mean) for lag in AUTOCORR_LAGS]

    power = np.abs(np.fft.rfft(centred, axis=-1)) ** 2 / max(t, 1)  # [N, S, t//2+1]
    power = power[..., 1:]  # no DC (the mean is a feature already)
    n_bins = power.shape[-1]
    freq = np.arange(1, n_bins + 1) / max(n_bins, 1)  # fraction of Nyquist of each bin
    bands = [np.log1p(power[..., (freq > lo) & (freq <= hi)].sum(-1))
             for lo, hi in zip(BAND_EDGES[:-1], BAND_EDGES[1:], strict=True)]
    total = power.sum(-1)
    has_power = total > _EPS
    peak = power.argmax(-1) if n_bins else np.zeros(mean.shape, dtype=np.int64)
    dominant = np.where(has_power, (peak + 1) / max(n_bins, 1), 0.0)
    p = power / np.where(has_power, total, 1.0)[..., None]
    entropy = -(p * np.log(np.where(p > 0, p, 1.0))).sum(-1) / np.log(max(n_bins, 2))
    entropy = np.where(has_power, entropy, 0.0)
    feats = [mean, std, s.min(-1), s.max(-1), *pct, energy, jerk, skew, kurt, *autocorr, *bands, dominant,
             entropy]
    return np.stack(feats, axis=-1)


def _correlations(x: np.ndarray, triple: tuple[int, int, int]) -> np.ndarray:
    """Pearson correlations xy, xz, yz of one sensor: [N, 3] (0 where a signal is constant)."""
    s = x[:, list(triple)].astype(np.float64)
    c = s - s.mean(-1, keepdims=True)
    norm = np.sqrt((c * c).sum(-1))  # [N, 3]
    out = []
    for a, b in ((0, 1), (0, 2), (1, 2)):
        den = norm[:, a] * norm[:, b]
        out.append(np.where(den > _EPS, (c[:, a] * c[:, b]).sum(-1) / np.where(den > _EPS, den, 1.0), 0.0))
    return np.stack(out, axis=-1)


def window_features(x: np.ndarray, channels: list[str] | None = None) -> np.ndarray:
    """Hand-made features of windows (see the module docstring).

    Args:
        x: float [N, C, T] windows (acc in g, gyro in rad/s).
        channels: C channel names (``body_acc_x`` ...); sensors are the complete x/y/z triples.
            Default: the standard 9 HAR channels when C == 9, else unnamed (no sensor features).

    Returns:
        float32 [N, F], finite; F = 24 * (C + sensors) + 3 * sensors (+ 3 with ``total_acc``):
        300 for the 9 HAR channels.
    """
    x = np.asarray(x)
    if x.ndim != 3:
        raise HarvitError(f"window_features: expected windows [N, C, T], got shape {list(x.shape)}")
    if channels is None:
        channels = list(CHANNELS) if x.shape[1] == 9 else [f"ch{i}" for i in range(x.shape[1])]
    if len(channels) != x.shape[1]:
        raise HarvitError(f"window_features: {len(channels)} channel names for {x.shape[1]} channels")
    sensors = _sensors(list(channels))
    signals = [x.astype(np.float64)]
    for _, t in sensors:
        signals.append(np.sqrt((x[:, list(t)].astype(np.float64) ** 2).sum(1, keepdims=True)))
    all_signals = np.concatenate(signals, axis=1)  # [N, C + sensors, T]
    parts = [signal_features(all_signals).reshape(len(x), -1)]
    for _, t in sensors:
        parts.append(_correlations(x, t))
    for prefix, t in sensors:
        if "total" in prefix:
            g = x[:, list(t)].astype(np.float64).mean(-1)  # [N, 3]
            n = np.linalg.norm(g, axis=-1, keepdims=True)
            parts.append(np.where(n > _EPS, g / np.where(n > _EPS, n, 1.0), 0.0))
    out = np.concatenate(parts, axis=1)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
