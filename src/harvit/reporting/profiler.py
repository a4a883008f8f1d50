"""Where the time and memory of a training step go: image encoding, forward, backward.

:class:`PerformanceProfiler` times the training step itself (:func:`harvit.training.step.train_step`:
a batch of B samples = B images, one view of each window, encoded on the device, then the network
forward, the loss, the backward pass and the optimiser update) and an evaluation pass (every view of
every window, no gradients). The step's parts are timed beside it: the encoding alone, the
forward pass without gradients; the backward share is the rest of the step. It sweeps batch sizes
(OOM rows marked), compares fp32 with autocast, and can record a ``torch.profiler`` trace for TensorBoard.

:mod:`harvit.reporting.profile_command` is ``harvit profile`` (it gathers a random model and random
windows), :mod:`harvit.reporting.profile_format` renders the result, :mod:`harvit.reporting.measure`
holds the clocks, precision contexts and peak memory.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch import profiler as tp

from harvit.config import Config
from harvit.data import Dataset, Windows
from harvit.evaluation.inference import Split
from harvit.models.classifier import WindowClassifier
from harvit.reporting.measure import autocast_for, median_ms, peak_memory_mb, reset_peak_memory, sync
from harvit.training.optim import build_optimizer
from harvit.training.run import Run
from harvit.training.state import TrainState
from harvit.training.step import batch_logits, train_step
from harvit.utils.atomic import write_json
from harvit.utils.errors import HarvitError
from harvit.utils.runtime import AutocastFactory, count_parameters, module_device


class PerformanceProfiler:
    """Times and measures a model on batches of windows.

    Args:
        model: a :class:`~harvit.models.classifier.WindowClassifier` (``imager`` + ``net``: encoding is timed on
            its own), or any module mapping windows [B, C, T] to scores [B, K] (no encoding time).
        loader: iterable of ``(x [B, C, T], y [B])`` batches (e.g. :func:`harvit.evaluation.inference.window_loader`);
            its first batches are the profiled data, tiled to any batch size.
        steps: timed steps per measurement (after ``warmup`` untimed ones).
        max_seconds: stop a measurement's training (and its evaluation) steps once this long has
            passed, warmup included; at least one step is always timed.
    """

    def __init__(self, model: nn.Module, loader: Iterable[Any], steps: int = 5, warmup: int = 1,
                 max_seconds: float = 5.0) -> None:
        if steps < 1:
            raise HarvitError(f"--steps: got {steps}, expected >= 1")
        self.model = model
        self.loader = loader
        self.steps = int(steps)
        self.warmup = int(warmup)
        self.max_seconds = float(max_seconds)
        self.device = module_device(model)
        xs, ys = [], []
        for x, y in loader:
            xs.append(torch.as_tensor(x))
            ys.append(torch.as_tensor(y))
            if len(xs) >= self.steps + self.warmup:
                break
        if not xs:
            raise HarvitError("profiler: the loader yielded no batches")
        self.batch_size = int(xs[0].shape[0])
        self.pool_x = torch.cat(xs).to(self.device).float()  # [P, C, T]
        self.pool_y = torch.cat(ys).to(self.device).long()
        self.imager = getattr(model, "imager", None)
        self.net = getattr(model, "net", None)
        self.n_views = int(getattr(model, "n_views", 1) or 1)
        # Window statistics beside the images (WindowClassifier.stats): computed once per window,
        # as the trainer does, so not part of a step's time.
        stats = getattr(model, "stats", None)
        self.pool_stats = None
        if stats is not None and self.imager is not None:
            with torch.no_grad():
                self.pool_stats = stats(self.pool_x)

    # ---- one measurement ------------------------------------------------------------------
    def _batch(self, b: int, offset: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Windows [b, C, T], labels [b] and statistics [b, F] (or None), tiled from the pool."""
        idx = (torch.arange(b, device=self.device) + offset * b) % self.pool_x.shape[0]
        stats = self.pool_stats[idx] if self.pool_stats is not None else None
        return self.pool_x[idx], self.pool_y[idx], stats

    def _step_run(self, autocast: AutocastFactory) -> Run:
        """A training run around the profiled :class:`WindowClassifier`: the window pool is its training
        split, and the real AdamW runs at learning rate 0, so the step costs what it costs in training and
        the weights stay as they are."""
        model = self.model
        assert isinstance(model, WindowClassifier)
        cfg = Config(weight_decay=0.0, lr=1e-3, augment=False)
        optimizer = build_optimizer(model.net, 0.0, 0.0, self.device)
        y = self.pool_y.cpu().numpy()
        channels = list(model.imager.channels)
        pool = Windows(self.pool_x.cpu().numpy(), y, np.zeros(len(y), np.int64), channels,
                       [f"class{i}" for i in range(int(y.max(initial=0)) + 1)], 50.0)
        split = Split("train", self.pool_x, self.pool_y, [], stats=self.pool_stats)
        fp16 = self.device.type == "cuda" and autocast is not contextlib.nullcontext
        return Run(cfg, self.device, autocast, Dataset("profile", pool, pool), {}, {"train": split}, pool.classes,
                   channels, model, None, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0),
                   torch.amp.GradScaler(self.device.type, enabled=fp16), None, False, 0, 1,
                   TrainState(micro_batch=1 << 30))

    def _sample_ids(self, b: int, offset: int) -> torch.Tensor:
        """Training sample ids [b] (window = id // V, view = id % V), tiled over the pool's windows and views."""
        n = self.pool_x.shape[0] * self.n_views
        return (torch.arange(b, device=self.device) + offset * b) % n

    def _train_step(self, run: Run | None, x: torch.Tensor, y: torch.Tensor, offset: int,
                    autocast: AutocastFactory) -> tuple[float | None, float, float | None]:
        """(encode, forward, backward) seconds of one training step of B samples.

        A :class:`WindowClassifier` runs the real step (:func:`~harvit.training.step.train_step`); its
        encoding and forward pass are timed on their own beside it, and backward is the rest of the step
        (backward, clipping, optimiser update). Any other window model: its forward and backward.
        """
        if run is not None:
            idx = self._sample_ids(x.shape[0], offset)
            win, view = torch.div(idx, self.n_views, rounding_mode="floor"), idx % self.n_views
            t0 = time.perf_counter()
            with torch.no_grad():
                self.imager(self.pool_x[win], view)
            sync(self.device)
            t1 = time.perf_counter()
            with torch.no_grad():
                batch_logits(run, idx)
            sync(self.device)
            t2 = time.perf_counter()
            train_step(run, idx)
            sync(self.device)
            step = time.perf_counter() - t2
            encode, forward = t1 - t0, max(1e-9, (t2 - t1) - (t1 - t0))
            return encode, forward, max(1e-9, step - encode - forward)
        t0 = time.perf_counter()
        with autocast():
            scores = self.model(x)
        loss = F.cross_entropy(scores.float(), y)
        sync(self.device)
        t1 = time.perf_counter()
        backward = None
        if loss.requires_grad:
            loss.backward()
            sync(self.device)
            backward = time.perf_counter() - t1
            self.model.zero_grad(set_to_none=True)
        return None, t1 - t0, backward

    @torch.no_grad()
    def _eval_step(self, x: torch.Tensor, autocast: AutocastFactory) -> float:
        t0 = time.perf_counter()
        with autocast():
            self.model(x)
        sync(self.device)
        return time.perf_counter() - t0

    def measure(self, batch_size: int, precision: str = "fp32", steps: int | None = None) -> dict[str, Any]:
        """Time training steps and evaluation passes at one batch size (images per training step).

        Returns:
            dict: batch_size, precision, encode_ms, forward_ms, backward_ms (None when nothing
            trains), step_ms (their sum), train_images_per_s, eval_ms (all V views of ``batch_size``
            windows), eval_images_per_s, eval_windows_per_s, peak_memory_mb, memory_kind, steps.
        """
        steps = steps or self.steps
        autocast = autocast_for(self.device, precision)
        run = self._step_run(autocast) if self.imager is not None and self.net is not None else None
        was_training = self.model.training
        self.model.train()
        kind = reset_peak_memory(self.device)
        enc, fwd, bwd = [], [], []
        try:
            t_start = time.perf_counter()
            for i in range(self.warmup + steps):
                x, y, _ = self._batch(batch_size, i)
                e, f, b = self._train_step(run, x, y, i, autocast)
                if i >= self.warmup:
                    enc.append(e)
                    fwd.append(f)
                    bwd.append(b)
                    if time.perf_counter() - t_start > self.max_seconds:
                        break
            self.model.eval()
            ev = []
            t_start = time.perf_counter()
            for i in range(self.warmup + steps):
                t = self._eval_step(self._batch(batch_size, i)[0], autocast)
                if i >= self.warmup:
                    ev.append(t)
                    if time.perf_counter() - t_start > self.max_seconds:
                        break
        finally:
            self.model.zero_grad(set_to_none=True)
            self.model.train(was_training)
        has_bwd = all(b is not None for b in bwd)
        step_ms = median_ms([(e or 0.0) + f + (b or 0.0) for e, f, b in zip(enc, fwd, bwd, strict=True)])
        eval_ms = median_ms(ev)
        return {
            "batch_size": batch_size,
            "precision": precision,
            "status": "ok",
            "encode_ms": round(median_ms(enc), 3) if run is not None else None,
            "forward_ms": round(median_ms(fwd), 3),
            "backward_ms": round(median_ms([b for b in bwd if b is not None]), 3) if has_bwd else None,
            "step_ms": round(step_ms, 3),
            "train_images_per_s": round(1000.0 * batch_size / step_ms, 1),
            "eval_ms": round(eval_ms, 3),
            "eval_images_per_s": round(1000.0 * batch_size * self.n_views / eval_ms, 1),
            "eval_windows_per_s": round(1000.0 * batch_size / eval_ms, 1),
            "peak_memory_mb": round(peak_memory_mb(self.device), 1),
            "memory_kind": kind,
            "steps": len(enc),
        }

    # ---- the public measurements ----------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Device and model facts: device, device_name, torch_threads, params_total, params_trainable,
        n_views, in_chans, img_size, window_shape."""
        total, trainable = count_parameters(self.model)
        dev = self.device
        return {
            "device": str(dev),
            "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
            "torch_threads": torch.get_num_threads(),
            "params_total": total,
            "params_trainable": trainable,
            "n_views": self.n_views,
            "in_chans": int(getattr(self.imager, "in_chans", 0) or 0) or None,
            "img_size": int(getattr(self.imager, "img_size", 0) or 0) or None,
            "window_shape": list(self.pool_x.shape[1:]),
        }

    def benchmark_batch_sizes(self, batch_sizes: Iterable[int] = (8, 16, 32, 64, 128, 256)
                              ) -> list[dict[str, Any]]:
        """Throughput and peak memory per batch size (images per training step).

        A size that runs out of device memory is marked ``status: "oom"`` and larger sizes are
        skipped (``status: "skipped"``). The row with the most training images/s has ``best: True``.
        """
        rows: list[dict[str, Any]] = []
        oom_at: int | None = None
        for b in sorted({int(s) for s in batch_sizes}):
            if b < 1:
                raise HarvitError(f"--batch-sizes: got {b}, expected positive sizes")
            if oom_at is not None:
                rows.append({"batch_size": b, "status": "skipped",
                             "reason": f"larger than {oom_at} (out of memory)"})
                continue
            try:
                rows.append(self.measure(b))
            except torch.OutOfMemoryError:
                self.model.zero_grad(set_to_none=True)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                rows.append({"batch_size": b, "status": "oom"})
                oom_at = b
        ok = [r for r in rows if r["status"] == "ok"]
        if ok:
            best = max(ok, key=lambda r: r["train_images_per_s"])
            for r in rows:
                r["best"] = r is best
        return rows

    def compare_amp_performance(self, model: nn.Module | None = None, loader: Iterable[Any] | None = None
                                ) -> dict[str, Any]:
        """fp32 vs autocast speed and memory at the loader's batch size.

        On CUDA: fp32, bf16 (when supported) and fp16. On the CPU mixed precision is not used in
        training (``--amp`` is CUDA-only), so fp32 is compared with CPU bf16 autocast for reference.

        Returns:
            dict: device, note, rows (one :meth:`measure` row per precision, plus ``speedup`` vs fp32).
        """
        prof = self
        if model is not None:
            prof = PerformanceProfiler(model, loader if loader is not None else self.loader, self.steps,
                                       self.warmup, self.max_seconds)
        dev = prof.device
        if dev.type == "cuda":
            precisions = ["fp32"] + (["bf16"] if torch.cuda.is_bf16_supported() else []) + ["fp16"]
            note = "CUDA autocast (training uses --amp-dtype, default bf16)"
        else:
            precisions = ["fp32", "bf16"]
            note = ("AMP is CUDA-only: on the CPU training runs in fp32 (--amp has no effect); "
                    "CPU bf16 autocast is shown for reference")
        rows = []
        for p in precisions:
            try:
                rows.append(prof.measure(prof.batch_size, p))
            except torch.OutOfMemoryError:
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
                rows.append({"batch_size": prof.batch_size, "precision": p, "status": "oom"})
            except RuntimeError as e:  # an op without a kernel for this dtype on this device
                rows.append({"batch_size": prof.batch_size, "precision": p, "status": "n/a",
                             "reason": str(e).splitlines()[0][:200]})
        base = next((r for r in rows if r["precision"] == "fp32" and r["status"] == "ok"), None)
        for r in rows:
            if base is not None and r["status"] == "ok":
                r["speedup"] = round(base["step_ms"] / r["step_ms"], 3)
        return {"device": str(dev), "note": note, "rows": rows}

    def trace(self, trace_dir: str | Path, steps: int | None = None) -> dict[str, Any]:
        """Record a ``torch.profiler`` trace of training steps for TensorBoard's profiler plugin.

        Returns:
            dict: trace_dir, files (trace files written), top_ops (the 15 costliest operators as text).
        """
        steps = steps or min(self.steps, 3)
        trace_dir = Path(trace_dir)
        trace_dir.mkdir(parents=True, exist_ok=True)
        before = set(trace_dir.rglob("*"))
        acts = [tp.ProfilerActivity.CPU] + ([tp.ProfilerActivity.CUDA] if self.device.type == "cuda" else [])
        run = self._step_run(contextlib.nullcontext) if self.imager is not None and self.net is not None else None
        self.model.train()
        write_trace = tp.tensorboard_trace_handler(str(trace_dir))
        sort = "self_cuda_time_total" if self.device.type == "cuda" else "self_cpu_time_total"
        tables: list[str] = []

        def on_ready(p: tp.profile) -> None:  # the TensorBoard trace, and the op table before events clear
            write_trace(p)
            tables.append(p.key_averages().table(sort_by=sort, row_limit=15))

        with warnings.catch_warnings(), tp.profile(activities=acts, schedule=tp.schedule(wait=0, warmup=1,
                                                                                      active=steps),
                                                   on_trace_ready=on_ready, profile_memory=True) as prof:
            warnings.filterwarnings("ignore", message=".*clears events at the end of each cycle.*")
            for i in range(1 + steps):
                x, y, _ = self._batch(self.batch_size, i)
                with tp.record_function("harvit_train_step"):
                    if run is not None:
                        train_step(run, self._sample_ids(self.batch_size, i))
                    else:
                        self._train_step(None, x, y, i, contextlib.nullcontext)
                prof.step()
        self.model.zero_grad(set_to_none=True)
        files = sorted(str(p) for p in set(trace_dir.rglob("*")) - before if p.is_file())
        return {"trace_dir": str(trace_dir), "files": files, "top_ops": tables[-1] if tables else ""}

    def run_full_profile(self, path: str | Path | None = "profile.json",
                         batch_sizes: Iterable[int] | None = None, amp: bool = False,
                         trace_dir: str | Path | None = None) -> dict[str, Any]:
        """Encoding, forward and backward time per batch, images/s and peak memory at the loader's
        batch size; optionally a batch-size sweep, the AMP comparison and a trace.

        Args:
            path: write the result here as JSON (None: do not write).
            batch_sizes: sizes for :meth:`benchmark_batch_sizes` (None: skip).
            amp: run :meth:`compare_amp_performance`.
            trace_dir: record a :meth:`trace` here (None: skip).

        Returns:
            dict: the :meth:`describe` facts, ``profile`` (a :meth:`measure` row), and
            ``batch_sizes`` / ``best_batch_size`` / ``amp`` / ``trace`` when asked.
        """
        t0 = time.perf_counter()
        result: dict[str, Any] = {**self.describe(), "profile": self.measure(self.batch_size)}
        if batch_sizes is not None:
            rows = self.benchmark_batch_sizes(batch_sizes)
            result["batch_sizes"] = rows
            best = [r for r in rows if r.get("best")]
            result["best_batch_size"] = best[0]["batch_size"] if best else None
        if amp:
            result["amp"] = self.compare_amp_performance()
        if trace_dir is not None:
            result["trace"] = self.trace(trace_dir)
        result["profile_time_s"] = round(time.perf_counter() - t0, 2)
        if path is not None:
            write_json(path, result)
            result["json_path"] = str(path)
        return result


def compare_amp_performance(model: nn.Module, loader: Iterable[Any], steps: int = 5) -> dict[str, Any]:
    """fp32 vs autocast speed and memory of ``model`` on ``loader`` (see
    :meth:`PerformanceProfiler.compare_amp_performance`)."""
    return PerformanceProfiler(model, loader, steps=steps).compare_amp_performance()


# ---------------------------------------------------------------------------------------------
