"""Frozen means cached: encoder features of every view, computed once.

With a frozen encoder and no augmentation, the encoder's output for a given view never
changes, so it is computed once per (window, view) and the head trains on the cache:
epochs after the first cost only the head.

Cache layout: ``[N, V, D]`` float32 per split, kept on the device, and saved as ``.npy`` under
``<cache_dir>/features/`` keyed by everything that determines it (encoder name and weights
checksum, encodings, image size, mode, scaler state, data checksum). A later run (or a
resumed one) with the same key memory-maps the file instead of recomputing.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from harvit.data import cache_dir
from harvit.evaluation.inference import run_batches
from harvit.training.run import Run
from harvit.utils.atomic import write_with
from harvit.utils.errors import HarvitError
from harvit.utils.logging import log, progress_bar


def tensor_digest(*tensors: torch.Tensor) -> str:
    """SHA-256 (hex, 16 chars) of tensors' bytes, in order."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().to("cpu").contiguous()
        h.update(str(tuple(t.shape)).encode())
        h.update(str(t.dtype).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def module_digest(module: torch.nn.Module) -> str:
    """Checksum of a module's state (weights, buffers and plain extra state)."""
    items = sorted(module.state_dict().items())
    plain = json.dumps([(k, v) for k, v in items if not isinstance(v, torch.Tensor)], default=str)
    tensors = [torch.frombuffer(bytearray(plain.encode()), dtype=torch.uint8)]
    return tensor_digest(*tensors, *[v for _, v in items if isinstance(v, torch.Tensor)])


def cache_key(parts: dict) -> str:
    """A short stable key from a dict of plain values."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def compute_view_features(
    encoder: torch.nn.Module,
    imager: torch.nn.Module,
    x: torch.Tensor,
    images_per_batch: int,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Pooled encoder features of every view: windows x [N, C, T] -> [N, V, D] float32.

    Runs ``imager.all_views`` (in float32) and the encoder (under ``autocast``) batch by batch:
    ``images_per_batch`` images, i.e. ``images_per_batch // V`` windows.
    """
    n_views = int(imager.n_views)

    def views_features(rows: slice) -> torch.Tensor:
        xb = x[rows]
        images = imager.all_views(xb)
        with autocast():
            return encoder(images).float().view(xb.shape[0], n_views, -1)

    out = [f for _, f in run_batches(views_features, x.shape[0], max(1, images_per_batch // n_views), progress)]
    if not out:
        return torch.zeros(0, n_views, 0, device=x.device)
    return torch.cat(out)


def compute_with_backoff(
    encoder: torch.nn.Module,
    imager: torch.nn.Module,
    x: torch.Tensor,
    images_per_batch: int,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    progress: Callable[[int], None] | None = None,
    on_retry: Callable[[], None] | None = None,
    log: Callable[[str], None] = print,
) -> tuple[torch.Tensor, int]:
    """:func:`compute_view_features` at the largest batch that fits: halve on out-of-memory.

    Starts at ``images_per_batch`` images and halves it after each ``torch.OutOfMemoryError``
    until one window's views no longer fit (then :class:`HarvitError`); ``on_retry`` runs before
    each new attempt (e.g. a progress bar's reset). Returns the features [N, V, D] and the batch
    size that worked.
    """
    per = images_per_batch
    while True:
        try:
            return compute_view_features(encoder, imager, x, per, autocast, progress), per
        except torch.OutOfMemoryError:
            if x.is_cuda:
                torch.cuda.empty_cache()
            if per <= int(imager.n_views):
                raise HarvitError("out of memory in the feature pass even for one window's views; lower "
                                  "--img-size or use a smaller --encoder") from None
            per = max(int(imager.n_views), per // 2)
            log(f"feature cache: out of memory, retrying at {per} images per batch")
            if on_retry is not None:
                on_retry()


def load_cached(path: Path) -> torch.Tensor | None:
    """The cached features at ``path`` (memory-mapped), or None when absent or unreadable."""
    if not path.is_file():
        return None
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    return torch.from_numpy(np.ascontiguousarray(arr))


def save_cached(path: Path, feats: torch.Tensor) -> None:
    """Save features atomically as ``.npy``."""
    arr = feats.detach().to("cpu").numpy()

    def writer(f: io.BufferedIOBase) -> None:
        np.save(f, arr, allow_pickle=False)

    write_with(path, writer)


def build_feature_cache(run: Run, only_missing: bool = False) -> float:
    """Encoder features of every view of every split, from disk when the key matches. Returns seconds.

    Sets ``split.feats`` [N, V, D] of each of the run's splits (with ``only_missing``: of those that have
    none yet; the refit is handed the selection's). Under torchrun the ranks encode their
    shares, every rank gathers the whole cache, and rank 0 saves it.
    """
    t0 = time.perf_counter()
    cfg, model = run.cfg, run.model
    base = {
        "encoder": cfg.encoder, "weights": module_digest(model.net.encoder), "encodings": cfg.encodings,
        "img_size": cfg.img_size, "mode": cfg.mode, "scaler": module_digest(model.imager),
        **model.imager.settings, "amp": run.device.type == "cuda" and cfg.amp, "amp_dtype": cfg.amp_dtype,
    }
    folder = cache_dir() / "features"
    model.eval()
    # The frozen pass has no gradients: on CUDA start large and let out-of-memory find the size.
    if not run.feature_batch:
        run.feature_batch = max(cfg.eval_batch_size, 4096) if run.device.type == "cuda" else cfg.eval_batch_size
    dist = run.dist
    for name, split in run.splits.items():
        if only_missing and split.feats is not None:
            continue
        key = cache_key({**base, "data": tensor_digest(split.x), "split": name})
        path = folder / f"{key}.npy"
        feats = load_cached(path)
        source = "loaded"
        found = feats is not None and feats.shape[:2] == (len(split), run.n_views)
        if not dist.all_true(found):  # under torchrun each rank encodes its share of whole batches
            shares = dist.batch_rows(len(split), max(1, run.feature_batch // run.n_views))
            mine = shares[dist.rank]
            bar = progress_bar(cfg.progress and dist.is_main, mine.stop - mine.start, f"features {name}",
                               unit="window")
            with dist.agreed():
                part, run.feature_batch = compute_with_backoff(
                    model.net.encoder, model.imager, split.x[mine], run.feature_batch, run.autocast,
                    bar.update if bar else None, bar.reset if bar else None, log)
            if bar:
                bar.close()
            feats = dist.gather_rows(part, [s.stop - s.start for s in shares])
            try:
                dist.on_main(save_cached, path, feats)
            except HarvitError as e:
                log(f"feature cache: not saved ({e})")
            source = "computed"
        split.feats = place_features(feats, run.device)
        log(f"feature cache: {name} {tuple(split.feats.shape)} {source} ({path.name})")
    return time.perf_counter() - t0


def place_features(feats: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Features on the device when they fit (half the free CUDA memory), else on the host (pinned)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if feats.numel() * 4 > free // 2:
            log("feature cache: kept on the host (too large for the device)")
            return feats.pin_memory() if not feats.is_pinned() else feats
    return feats.to(device)
