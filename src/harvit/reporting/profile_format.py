"""The readable summary of a profile (:meth:`harvit.reporting.profiler.PerformanceProfiler.run_full_profile`)."""

from __future__ import annotations

import math
from typing import Any


def _fmt(v: Any, spec: str = ".1f") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return format(v, spec)


def _status(r: dict[str, Any]) -> str:
    return r["status"] + (f" ({r['reason']})" if r.get("reason") else "")


def format_profile(result: dict[str, Any]) -> str:
    """A readable summary of :meth:`PerformanceProfiler.run_full_profile`'s result."""
    p = result["profile"]
    mem = {"cuda_max_allocated": "CUDA max allocated", "process_peak_rss": "process peak RSS",
           "process_lifetime_peak_rss": "process lifetime peak RSS"}.get(p["memory_kind"], p["memory_kind"])
    lines = [
        f"device {result['device']} ({result['device_name']}, {result['torch_threads']} threads) | "
        f"{result['params_total'] / 1e6:.2f}M params ({result['params_trainable'] / 1e6:.3f}M trainable) | "
        f"{result['n_views']} view(s) of {result['in_chans']}x{result['img_size']}x{result['img_size']}",
        f"batch {p['batch_size']} images (median of {p['steps']} steps): encode {_fmt(p['encode_ms'])} ms, "
        f"forward {_fmt(p['forward_ms'])} ms, backward {_fmt(p['backward_ms'])} ms "
        f"-> {_fmt(p['train_images_per_s'], '.0f')} images/s training, "
        f"{_fmt(p['eval_images_per_s'], '.0f')} images/s evaluation; "
        f"peak {p['peak_memory_mb']:.0f} MiB ({mem})",
    ]
    if result.get("batch_sizes"):
        lines += ["", f"{'batch':>6}  {'step ms':>9}  {'train img/s':>11}  {'eval img/s':>10}  "
                      f"{'peak MiB':>9}"]
        for r in result["batch_sizes"]:
            if r["status"] != "ok":
                lines.append(f"{r['batch_size']:>6}  {_status(r)}")
                continue
            best = "  <- best" if r.get("best") else ""
            lines.append(f"{r['batch_size']:>6}  {r['step_ms']:>9.1f}  {r['train_images_per_s']:>11.0f}  "
                         f"{r['eval_images_per_s']:>10.0f}  {r['peak_memory_mb']:>9.0f}{best}")
    if result.get("amp"):
        a = result["amp"]
        lines += ["", f"precision ({a['note']}):"]
        for r in a["rows"]:
            if r["status"] != "ok":
                lines.append(f"  {r['precision']:<5} {_status(r)}")
                continue
            lines.append(f"  {r['precision']:<5} step {r['step_ms']:.1f} ms, {r['train_images_per_s']:.0f} "
                         f"images/s, peak {r['peak_memory_mb']:.0f} MiB, "
                         f"x{r.get('speedup', 1.0):.2f} vs fp32")
    if result.get("trace"):
        where = result["trace"]["trace_dir"]
        lines += ["", f"trace: {where} (view with: tensorboard --logdir {where})"]
    if result.get("json_path"):
        lines.append(f"written: {result['json_path']} ({result['profile_time_s']:.1f}s)")
    return "\n".join(lines)
