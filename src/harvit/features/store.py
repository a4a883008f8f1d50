"""Side features computed once per window set and kept on disk: convolution counts and window statistics.

Training fits the random-convolution features (:class:`~harvit.features.rocket.RocketFeatures`) and the
window statistics on the training windows and then needs them for every window of training,
validation and test; a later run on the same windows (a second run, another seed of the head, the
baselines) needs the same numbers again. :func:`rocket_raw` and :func:`statistics_raw` compute them
once and save them under ``cache_dir()/side_features/``, named by a checksum of the windows' bytes and
of everything that determines the numbers (the fitted kernels, dilations, channel subsets and biases;
the channel names), so a changed input or fit computes afresh.

Storage: convolution features as exact integer counts (uint8 for windows up to 255 samples: a
quarter of float32), divided by their lengths on reading, which gives the same float32 values as
computing them; statistics as float32. Sets under :data:`MIN_WINDOWS` windows are computed, not stored.
A cache file that cannot be read is recomputed; a folder that cannot be written only logs a line.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from harvit.data.cache import cache_dir
from harvit.utils.atomic import write_with
from harvit.utils.errors import HarvitError
from harvit.utils.logging import log
from harvit.utils.progress import Progress

__all__ = ["MIN_WINDOWS", "STORE_VERSION", "rocket_counts", "rocket_raw", "statistics_raw", "windows_digest"]

STORE_VERSION = 2
"""Bump when the features' computation changes its output: every stored file is recomputed."""
MIN_WINDOWS = 256
"""Window sets smaller than this are computed each time (too quick to be worth a file)."""
SLOW_WINDOWS = 2000
"""Window sets from this size on say in the log what is computed and how long it took."""
CHUNK = 256
"""Windows per call while computing (bounds the memory of the intermediates)."""


def windows_digest(x: np.ndarray | torch.Tensor) -> str:
    """SHA-256 (hex, 20 chars) of windows [N, C, T]: shape, dtype and bytes."""
    t = torch.as_tensor(x).detach().cpu().contiguous()
    h = hashlib.sha256(f"{tuple(t.shape)} {t.dtype}".encode())
    if t.numel():
        h.update(t.view(torch.uint8).numpy().data)
    return h.hexdigest()[:20]


def _digest(*parts: object) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, torch.Tensor):
            t = p.detach().cpu().contiguous()
            h.update(f"{tuple(t.shape)} {t.dtype}".encode())
            h.update(t.view(torch.uint8).numpy().data if t.numel() else b"")
        else:
            h.update(repr(p).encode())
    return h.hexdigest()[:20]


def _path(kind: str, key: str) -> Path:
    return cache_dir() / "side_features" / f"{kind}-{key}.npy"


def _load(path: Path, rows: int) -> np.ndarray | None:
    """The stored array at ``path`` when present, readable and of ``rows`` rows, else None."""
    if not path.is_file():
        return None
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return arr if arr.ndim == 2 and arr.shape[0] == rows else None


def _save(path: Path, arr: np.ndarray) -> None:
    def writer(f: io.BufferedIOBase) -> None:
        np.save(f, arr, allow_pickle=False)

    try:
        write_with(path, writer)
    except (HarvitError, OSError) as e:
        log(f"side features: not stored ({e})")


def _compute(label: str, x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``fn`` over chunks of windows x [N, C, T] (no gradients), written into one tensor of ``fn``'s dtype (no
    list of parts and concatenated copy: on 156,547 windows of convolution counts that peak was 12 GB), saying
    so in the log for large sets."""
    n = int(x.shape[0])
    if n == 0:
        with torch.no_grad():
            return fn(x)
    loud = n >= SLOW_WINDOWS
    if loud:
        log(f"features: {label} of {n} windows ...")
    t0 = time.perf_counter()
    out = None
    with torch.no_grad(), Progress(f"features: {label}", n, unit="windows") as bar:
        for start in range(0, n, CHUNK):
            part = fn(x[start:start + CHUNK])
            if out is None:
                out = part.new_empty((n, *part.shape[1:]))
            out[start:start + len(part)] = part
            bar.update(len(part))
    if loud:
        log(f"features: {label} of {n} windows in {time.perf_counter() - t0:.1f} s")
    return out


def rocket_raw(rocket: torch.nn.Module, x: np.ndarray | torch.Tensor, store: bool = True,
               rows: np.ndarray | None = None) -> torch.Tensor:
    """Raw PPV float32 [N, F] of windows [N, C, T] through a fitted ``RocketFeatures`` (CPU tensor); with
    ``rows`` (int [M]) only those windows' [M, F], converted from the counts of all (which stay uint8).

    Equal to ``rocket.raw_features(x)``: :func:`rocket_counts` over each feature's length.
    """
    counts = rocket_counts(rocket, x, store)
    if rows is not None:
        counts = counts[rows]
    return torch.from_numpy(counts.astype(np.float32)) / rocket.count_lengths(int(torch.as_tensor(x).shape[-1]))


def rocket_counts(rocket: torch.nn.Module, x: np.ndarray | torch.Tensor, store: bool = True) -> np.ndarray:
    """Exact counts [N, F] of windows [N, C, T] through a fitted ``RocketFeatures``: uint8 for windows up to
    255 samples, else int32.

    Read from the store when this window set went through the same fitted kernels before, else computed
    and (with ``store``, for sets of :data:`MIN_WINDOWS` or more) saved.
    """
    x = torch.as_tensor(x)
    n = int(x.shape[0])
    dtype, torch_dtype = (np.uint8, torch.uint8) if int(x.shape[-1]) <= 255 else (np.int32, torch.int32)
    if n == 0:
        return np.zeros((0, rocket.n_features), dtype)
    keep = store and n >= MIN_WINDOWS and x.dtype == torch.float32
    path = None
    if keep:
        key = _digest(STORE_VERSION, windows_digest(x), rocket.dilations, rocket.per_dilation, rocket.weights,
                      rocket.channel_mask, rocket.biases)
        path = _path("rocket", key)
        stored = _load(path, n)
        if stored is not None and stored.shape[1] == rocket.n_features:
            return stored.astype(dtype, copy=False)
    device = rocket.biases.device
    counts = _compute(f"convolution features ({rocket.n_features} per window)", x,
                      lambda c: rocket.counts(c.to(device)).to(torch_dtype).cpu()).numpy()  # exact integers
    if path is not None:
        _save(path, counts)
    return counts


def statistics_raw(x: np.ndarray | torch.Tensor, channels: list[str],
                   compute: Callable[[torch.Tensor], torch.Tensor], store: bool = True,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """Raw window statistics float32 [N, F] (CPU) of windows [N, C, T]: ``compute(chunk [b, C, T] float64)``
    (float64 [b, F], run on ``device``) rounded to float32, from the store when computed for these
    windows before."""
    x = torch.as_tensor(x)
    n = int(x.shape[0])
    keep = store and n >= MIN_WINDOWS
    path = None
    if keep:
        path = _path("stats", _digest(STORE_VERSION, windows_digest(x), list(channels)))
        stored = _load(path, n)
        if stored is not None:
            return torch.from_numpy(stored.astype(np.float32, copy=False))
    raw = _compute("window statistics", x, lambda c: compute(c.to(device, torch.float64)).float().cpu())
    if path is not None and n:
        _save(path, raw.numpy())
    return raw
