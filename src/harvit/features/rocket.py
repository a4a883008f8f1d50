"""Random-convolution features (MiniRocket-style) in torch, on the device, inside the model.

MiniRocket (Dempster, Schmidt and Webb, KDD 2021) turns a window into the proportions of positive
values (PPV) of many dilated convolutions. This module computes the same features in plain torch
ops, so they run on the model's device and export to ONNX with the rest of the network:

- 84 kernels of length 9 whose weights are -1 everywhere except +2 at three of the nine taps (all
  C(9, 3) choices).
- Dilations ``floor(2 ** e)`` for e evenly spaced in [0, log2((T - 1) / 8)] (at most
  ``max_dilations``, repeated ones merged); each dilation gets a share of the features
  proportional to how often it came up.
- Each (dilation, kernel) pair reads the sum of a random subset of 1..min(C, 9) channels
  (``channel_mask``). A convolution is linear, so convolving the channel sum equals summing the
  channels' convolutions.
- Zero padding of 4 x dilation keeps the output length T; the convolution output at t is
  ``sum_k w_k x[t + (k - 4) d]`` (a cross-correlation, as ``torch.nn.functional.conv1d``).
- The biases of a pair are quantiles of its convolution output on one random training window
  (quantile levels from the golden-ratio sequence ``(i * phi) mod 1``); feature = mean over time of
  ``conv > bias``, over the whole output for (dilation index + kernel index) even, and over the
  unpadded middle ``[4d, T - 4d)`` for odd.

Feature order: dilation, then kernel, then bias (as aeon's ``MiniRocket``), so
:meth:`RocketFeatures.from_aeon` can take a fitted aeon transform's parameters and reproduce its
output (the test of this module uses that as the oracle). Features are fixed after fitting (no
gradient flows through a step function); the head learns from them beside the images and the
window statistics.

Shapes: windows x float [B, C, T] -> PPV float32 [B, F] in [0, 1] -> standardised float32 [B, F]
(mean and std fitted on the training windows, clipped to +-10).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harvit.features.store import rocket_counts, rocket_raw
from harvit.utils.errors import HarvitError

__all__ = ["KERNEL_TAPS", "RocketFeatures", "SideFeatures", "SideRows", "rocket_dilations"]

KERNEL_LENGTH = 9
#: The 84 kernels' three +2 taps (the other six are -1), in aeon's order.
KERNEL_TAPS: list[tuple[int, int, int]] = list(itertools.combinations(range(KERNEL_LENGTH), 3))
N_KERNELS = len(KERNEL_TAPS)
CHUNK = 256
"""Windows per call when features of many windows are computed at once (bounds the memory)."""
BLOCK = 64
"""Windows whose convolutions are counted together on the CPU (faster than 16 or 512: docs/benchmarks.md)."""
STANDARDISE_WINDOWS = 2048
"""Training windows (a seeded random subset) the features' mean and std are fitted on."""


def rocket_dilations(length: int, n_features: int, max_dilations: int = 32) -> tuple[list[int], list[int]]:
    """Dilations and features per kernel at each dilation for windows of ``length`` samples.

    Args:
        length: T, samples per window (>= 9).
        n_features: total features wanted (rounded down to a multiple of 84, at least 84).
        max_dilations: most dilations per kernel.

    Returns:
        (dilations, features per kernel at each dilation); the counts sum to ``n_features // 84``.
    """
    if length < KERNEL_LENGTH:
        raise HarvitError(f"--rocket-features: windows need at least {KERNEL_LENGTH} samples, got {length}")
    per_kernel = max(1, n_features // N_KERNELS)
    n_dil = min(per_kernel, max_dilations)
    top = math.log2((length - 1) / (KERNEL_LENGTH - 1))
    raw = np.floor(2.0 ** np.linspace(0.0, top, n_dil)).astype(np.int64)
    dilations, counts = np.unique(raw, return_counts=True)
    share = np.floor(counts * (per_kernel / n_dil)).astype(np.int64)
    i = 0
    while share.sum() < per_kernel:  # hand out what flooring left, one per dilation in turn
        share[i % len(share)] += 1
        i += 1
    return [int(d) for d in dilations], [int(s) for s in share]


def _golden_quantiles(n: int) -> np.ndarray:
    """Quantile levels ``(i * phi) mod 1`` for i = 1..n (a low-discrepancy sequence in (0, 1))."""
    phi = (1 + math.sqrt(5)) / 2
    return np.array([(i * phi) % 1 for i in range(1, n + 1)], dtype=np.float32)


def _above_counts(conv: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """How many time steps of conv [B, K, L] exceed each of its kernel's biases [K, n] -> [B, K, n] (conv's dtype).

    One comparison of the whole output per bias, written as 0/1 into a float buffer and summed: exact
    integer counts, at a fraction of the cost of sorting the outputs and searching the biases (the
    former way) for the few biases (n <= 30) a kernel has at one dilation.
    """
    above = conv.new_empty(conv.shape)
    counts = conv.new_empty(conv.shape[0], conv.shape[1], bias.shape[1])
    for i in range(bias.shape[1]):
        torch.gt(conv, bias[None, :, i, None], out=above)
        torch.sum(above, dim=-1, out=counts[:, :, i])
    return counts


def _share_above(conv: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Share of time steps where conv [B, K, L] exceeds each of its kernel's biases [K, n] -> [B, K, n].

    The exact counts of :func:`_above_counts` divided by L; an ONNX export compares every step with
    every bias at once (the same numbers, more memory).
    """
    if torch.onnx.is_in_onnx_export():
        return (conv[:, :, None, :] > bias[None, :, :, None]).to(conv.dtype).mean(-1)
    return _above_counts(conv, bias) / conv.shape[-1]


class RocketFeatures(nn.Module):
    """Windows [B, C, T] -> PPV features of dilated random convolutions [B, F] (see the module docstring).

    Buffers (all travel in the checkpoint): ``weights`` [84, 1, 9], ``channel_mask`` [P, C] (P = 84 x
    dilations; row p = dilation p // 84, kernel p % 84), ``biases`` [F], ``mean`` and ``std`` [F].
    """

    weights: torch.Tensor
    channel_mask: torch.Tensor
    biases: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, n_channels: int, length: int, n_features: int, max_dilations: int = 32) -> None:
        super().__init__()
        self.n_channels, self.length = int(n_channels), int(length)
        self.dilations, self.per_dilation = rocket_dilations(length, n_features, max_dilations)
        n_pairs = N_KERNELS * len(self.dilations)
        f = N_KERNELS * sum(self.per_dilation)
        w = -torch.ones(N_KERNELS, 1, KERNEL_LENGTH)
        for k, taps in enumerate(KERNEL_TAPS):
            w[k, 0, list(taps)] = 2.0
        self.register_buffer("weights", w)
        self.register_buffer("channel_mask", torch.zeros(n_pairs, n_channels))
        self.register_buffer("biases", torch.zeros(f))
        self.register_buffer("mean", torch.zeros(f))
        self.register_buffer("std", torch.ones(f))

    @property
    def n_features(self) -> int:
        return int(self.biases.numel())

    # ---- the transform ------------------------------------------------------------------------
    def convolve(self, x: torch.Tensor, j: int) -> torch.Tensor:
        """Convolution outputs [B, 84, T] at dilation index ``j`` of windows x [B, C, T] (x's dtype)."""
        d = self.dilations[j]
        mask = self.channel_mask[j * N_KERNELS:(j + 1) * N_KERNELS].to(x.dtype)  # [84, C]
        # kernel k on the sum of its channels = one dense convolution whose weight for channel c is mask[k, c] * w_k
        # (faster on the CPU than summing the channels and then a grouped convolution)
        weight = mask[:, :, None] * self.weights.to(x.dtype)  # [84, C, 9]
        return F.conv1d(x, weight, padding=4 * d, dilation=d)

    def parity_index(self, j: int) -> tuple[slice, slice]:
        """Kernels whose PPV covers the whole output (k + j even) and those over the unpadded middle, as
        strided slices of the kernel axis (views, no copies)."""
        return slice(j % 2, None, 2), slice((j + 1) % 2, None, 2)

    def ppv(self, x: torch.Tensor) -> torch.Tensor:
        """Raw PPV features float32 [B, F] in [0, 1] of windows x [B, C, T] (computed in x's float dtype).

        Works through :data:`BLOCK` windows at a time on the CPU (a window's features do not depend on
        its batch; small blocks keep the convolution outputs in the core's cache).
        """
        return self._per_pair(x, _share_above).float()

    def counts(self, x: torch.Tensor) -> torch.Tensor:
        """Exact counts [B, F] (x's float dtype) of time steps above each bias: :meth:`ppv` is
        ``counts(x) / count_lengths(T)`` (the same numbers); stored as integers by :mod:`.store`."""
        return self._per_pair(x, _above_counts)

    def count_lengths(self, t: int) -> torch.Tensor:
        """float32 [F]: how many time steps each feature's count is over, for windows of ``t`` samples
        (T for kernels read over the whole output, T - 8d over the unpadded middle where that is > 0)."""
        parts = []
        for j, (d, n_f) in enumerate(zip(self.dilations, self.per_dilation, strict=True)):
            rows = torch.full((N_KERNELS, n_f), float(t))
            if t - 8 * d > 0:
                rows[self.parity_index(j)[1]] = float(t - 8 * d)
            parts.append(rows.reshape(-1))
        return torch.cat(parts)

    def _per_pair(self, x: torch.Tensor, share: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """``share(conv, bias)`` of every (dilation, kernel) pair, in feature order: [B, F] in x's dtype."""
        if x.ndim != 3 or x.shape[1] != self.n_channels:
            raise HarvitError(f"rocket features: expected windows [B, {self.n_channels}, T], got {list(x.shape)}")
        x = x if x.dtype == torch.float64 else x.float()
        if x.device.type == "cpu" and not torch.onnx.is_in_onnx_export():
            # blocks of exactly BLOCK windows (the last one padded for the convolution): the CPU's convolution
            # rounds a lone window differently from a batch, and a window's features must not depend on its batch
            return torch.cat([self._per_pair_block(b, share, BLOCK) for b in x.split(BLOCK)])
        return self._per_pair_block(x, share)

    def _per_pair_block(self, x: torch.Tensor, share: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                        pad_to: int = 0) -> torch.Tensor:
        t, n = x.shape[-1], x.shape[0]
        padded = torch.cat([x, x.new_zeros(pad_to - n, *x.shape[1:])]) if pad_to > n else x
        parts, start = [], 0
        for j, (d, n_f) in enumerate(zip(self.dilations, self.per_dilation, strict=True)):
            conv = self.convolve(padded, j)[:n]  # [B, 84, T]
            bias = self.biases[start:start + N_KERNELS * n_f].view(N_KERNELS, n_f).to(x.dtype)
            start += N_KERNELS * n_f
            pad = 4 * d
            out = conv.new_empty(x.shape[0], N_KERNELS, n_f)
            even, odd = self.parity_index(j)  # kernels read over the whole output / its unpadded middle
            out[:, even] = share(conv[:, even], bias[even])
            out[:, odd] = share(conv[:, odd, pad:t - pad] if t - 2 * pad > 0 else conv[:, odd], bias[odd])
            parts.append(out.reshape(x.shape[0], N_KERNELS * n_f))
        return torch.cat(parts, dim=1)

    def standardise(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw PPV [B, F] -> standardised float32 [B, F], clipped to +-10."""
        return ((raw.float() - self.mean) / self.std).clamp(-10.0, 10.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised features float32 [B, F] of windows x [B, C, T]."""
        return self.standardise(self.ppv(x.detach()))

    def raw_features(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Raw PPV [N, F] of many windows [N, C, T] (CPU, in chunks)."""
        x = torch.as_tensor(x, device=self.biases.device)
        with torch.no_grad():
            return torch.cat([self.ppv(c) for c in x.split(CHUNK)]) if len(x) else torch.zeros(0, self.n_features)

    # ---- fitting ------------------------------------------------------------------------------
    @classmethod
    def fit(cls, x_train: np.ndarray, n_features: int, seed: int = 0, max_dilations: int = 32,
            standardise: bool = True) -> RocketFeatures:
        """Draw channel subsets, fit biases on random training windows [N, C, T], and the standardisation
        (``standardise=False``: left the identity, for a caller that reads only the counts).

        Each (dilation, kernel) pair reads 1..min(C, 9) channels (``floor(2 ** U(0, log2(min(C, 9) + 1)))``
        of them, chosen without repetition); its biases are quantiles of its convolution output on one
        training window drawn at random. Deterministic for a given ``seed``.
        """
        x_train = np.asarray(x_train, dtype=np.float32)
        n, c, t = x_train.shape
        if n == 0:
            raise HarvitError("--rocket-features: no training windows to fit the biases on")
        module = cls(c, t, n_features, max_dilations)
        rng = np.random.default_rng(seed)
        n_pairs = module.channel_mask.shape[0]
        top = math.log2(min(c, 9) + 1)
        for p in range(n_pairs):
            k = int(2 ** rng.uniform(0, top))
            module.channel_mask[p, rng.choice(c, size=min(max(k, 1), c), replace=False)] = 1.0
        quantiles = _golden_quantiles(module.n_features)
        biases, start = [], 0
        with torch.no_grad():
            for j, n_f in enumerate(module.per_dilation):
                rows = torch.from_numpy(x_train[rng.integers(0, n, N_KERNELS)])  # one window per kernel
                conv = module.convolve(rows, j)  # [84, 84, T]: window k through kernel k' (k = k' used)
                own = conv[torch.arange(N_KERNELS), torch.arange(N_KERNELS)]  # [84, T]
                q = torch.from_numpy(quantiles[start:start + N_KERNELS * n_f].reshape(N_KERNELS, n_f))
                biases.append(torch.stack([torch.quantile(own[k], q[k]) for k in range(N_KERNELS)]).reshape(-1))
                start += N_KERNELS * n_f
        module.biases.copy_(torch.cat(biases))
        if not standardise:
            return module
        sample = np.sort(rng.permutation(n)[:STANDARDISE_WINDOWS])
        # Every training window's features are needed for training anyway: computed once here and
        # stored (features.store), the standardisation reads its sample's rows of them.
        module.set_standardisation(rocket_raw(module, x_train, rows=sample))
        return module

    def fit_standardisation(self, x_train: np.ndarray | torch.Tensor) -> None:
        """Mean and std (floored at 1e-3) of the raw features over training windows [N, C, T]."""
        self.set_standardisation(self.raw_features(x_train))

    def set_standardisation(self, raw: torch.Tensor) -> None:
        """Mean and std (floored at 1e-3, computed in float64) of raw training features [N, F]."""
        f = raw.double()
        self.mean.copy_(f.mean(0).float())
        self.std.copy_(f.std(0, correction=0).clamp_min(1e-3).float())

    @classmethod
    def from_aeon(cls, parameters: Sequence[np.ndarray], n_channels: int, length: int) -> RocketFeatures:
        """A module with a fitted aeon ``MiniRocket``'s kernels, dilations, channel subsets and biases
        (its ``parameters`` attribute: channels per pair, channel indices, dilations, features per
        dilation, biases); the standardisation stays the identity."""
        n_ch_per_pair, channel_idx, dilations, per_dilation, biases = (np.asarray(p) for p in parameters)
        per_kernel = int(per_dilation.sum())
        module = cls(n_channels, length, N_KERNELS * per_kernel, max_dilations=len(dilations))
        module.dilations = [int(d) for d in dilations]
        module.per_dilation = [int(v) for v in per_dilation]
        module.channel_mask = torch.zeros(N_KERNELS * len(dilations), n_channels)
        start = 0
        for p, k in enumerate(n_ch_per_pair):
            module.channel_mask[p, torch.from_numpy(channel_idx[start:start + int(k)].astype(np.int64))] = 1.0
            start += int(k)
        module.biases = torch.from_numpy(biases.astype(np.float32))
        module.mean, module.std = torch.zeros(module.n_features), torch.ones(module.n_features)
        return module


class SideFeatures(nn.Module):
    """What the head reads beside the images: window statistics and/or random-convolution features.

    Windows [B, C, T] -> standardised float32 [B, F_stats + F_rocket] (``concat(stats(x), rocket(x))``).
    Offers the :class:`~harvit.features.statistics.WindowStats` interface the trainer uses
    (``n_features``, ``precompute``, calling it).
    """

    def __init__(self, stats: nn.Module | None, rocket: RocketFeatures) -> None:
        super().__init__()
        self.stats = stats
        self.rocket = rocket

    @property
    def n_features(self) -> int:
        return (self.stats.n_features if self.stats is not None else 0) + self.rocket.n_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = ([self.stats(x)] if self.stats is not None else []) + [self.rocket(x)]
        return torch.cat(parts, dim=1)

    def precompute(self, x: np.ndarray | torch.Tensor, device: torch.device | str) -> SideRows:
        """The features of windows [N, C, T] on ``device``, compact (:class:`SideRows`): the same numbers as
        calling the module, each window's raw features computed once and kept by :mod:`.store`."""
        x = torch.as_tensor(x)
        stats = self.stats.precompute(x, device) if self.stats is not None else None
        counts = torch.from_numpy(rocket_counts(self.rocket, x)).to(device)
        return SideRows(stats, counts, self.rocket.count_lengths(int(x.shape[-1])).to(device), self.rocket)


class SideRows:
    """The side features of a window set, kept compact and standardised when rows are looked up.

    Holds the standardised window statistics float32 [N, S] (None without them) and the convolution
    counts [N, F] (uint8 for windows up to 255 samples, else int32: a quarter of their float32 features or
    less) on one device. ``rows[idx]`` (a
    slice or an index tensor) gives the standardised float32 [b, S + F] that calling :class:`SideFeatures`
    on those windows gives: the same operations on the same numbers.
    """

    def __init__(self, stats: torch.Tensor | None, counts: torch.Tensor, lengths: torch.Tensor,
                 rocket: RocketFeatures) -> None:
        self.stats, self.counts, self.lengths, self.rocket = stats, counts, lengths, rocket

    def __len__(self) -> int:
        return int(self.counts.shape[0])

    def __getitem__(self, rows: slice | torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            conv = self.rocket.standardise(self.counts[rows].float() / self.lengths)
        return torch.cat([self.stats[rows], conv], dim=1) if self.stats is not None else conv
