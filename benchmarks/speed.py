"""Speed benchmark: encoder throughput, FLOPs and MFU, and end-to-end runs with and without the feature cache.

Prints a table and writes JSON. Every number comes from this one run on this one machine.

    # CPU (what CI-sized machines can run; the reference encoder at batch 1-2 only)
    HARVIT_DATA_DIR=../shared/data python benchmarks/speed.py --json speed_cpu.json
    # GPU: the reference rows, including the 20-epoch reference run with and without the cache
    HARVIT_DATA_DIR=../shared/data python benchmarks/speed.py --device cuda --batch-sizes 64,128,256,512 \
        --e2e-reference --json speed_gpu.json

Sections:
- ``throughput``: images/s of the frozen encoder forward (no grad, AMP on CUDA) and of a full
  training step (unfrozen encoder + head, AdamW) per encoder and batch size, with peak memory
  (CUDA max allocated, or the process's peak RSS on CPU).
- ``flops``: model FLOPs per image (forward, ``torch.utils.flop_counter``) and MFU of the frozen
  forward against the matrix-multiply rate measured in the same run (bf16 on CUDA, fp32 on CPU).
- ``cache``: end-to-end training with a frozen encoder: first epoch (builds the cache) vs the
  later epochs, and the same run without the cache.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from harvit.config import Config, resolve
from harvit.models.net import build_net
from harvit.utils.atomic import write_json
from harvit.utils.machine import describe_machine, machine_info

REFERENCE = dict(encoder="vit_base_patch8_224", img_size=224, in_chans=3, label="reference ViT-B/8 224px")


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Any, device: torch.device, steps: int, warmup: int = 1) -> float:
    """Median seconds per call."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def autocast(device: torch.device) -> Any:
    if device.type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext


def matmul_rate(device: torch.device) -> dict[str, float]:
    """Measured dense matmul TFLOP/s: bf16 on CUDA, fp32 on CPU."""
    n = 8192 if device.type == "cuda" else 2048
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = min(timed(lambda: a @ b, device, steps=1) for _ in range(10))  # the peak: best of 10
    return {"dtype": str(dtype).replace("torch.", ""), "n": n, "tflops": 2 * n**3 / best / 1e12}


def encoder_cfgs(args: argparse.Namespace) -> list[tuple[str, Config, int]]:
    cpu_cfg, _ = resolve({"preset": "cpu"}, cuda_available=False)
    cfgs = [("cpu preset", cpu_cfg, 9)]
    if not args.skip_reference:
        ref = Config(encoder=REFERENCE["encoder"], img_size=REFERENCE["img_size"], pretrained=False,
                     freeze_encoder=False, window_stats=False)
        cfgs.append((REFERENCE["label"], ref, REFERENCE["in_chans"]))
    return cfgs


def throughput(args: argparse.Namespace, device: torch.device, rate: dict[str, float]) -> list[dict[str, Any]]:
    rows = []
    for label, cfg, in_chans in encoder_cfgs(args):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = build_net(cfg.__class__(**{**cfg.to_dict(), "window_stats": False}), in_chans, 6).to(device)
        if device.type == "cuda":
            net = net.to(memory_format=torch.channels_last)
        one = torch.randn(1, in_chans, cfg.img_size, cfg.img_size, device=device)
        with FlopCounterMode(display=False) as fc:
            net.encoder(one)
        flops = fc.get_total_flops()
        sizes = args.batch_sizes if "cpu" in label or device.type == "cuda" else args.reference_cpu_batch_sizes
        for bs in sizes:
            row: dict[str, Any] = {"encoder": label, "name": cfg.encoder, "batch": bs, "img_size": cfg.img_size,
                                   "in_chans": in_chans, "gflops_per_image": flops / 1e9}
            try:
                x = torch.randn(bs, in_chans, cfg.img_size, cfg.img_size, device=device)
                y = torch.randint(0, 6, (bs,), device=device)
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                    x = x.to(memory_format=torch.channels_last)
                ac = autocast(device)
                t_f = time_forward(net, x, ac, device, args.steps)
                row["forward_images_per_s"] = bs / t_f
                row["forward_peak_mb"] = peak_memory_mb(device)
                row["mfu"] = (flops * bs / t_f / 1e12) / rate["tflops"]
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                t_s = time_train_step(net, x, y, ac, device, args.steps)
                row["train_step_images_per_s"] = bs / t_s
                row["train_peak_mb"] = peak_memory_mb(device)
            except torch.OutOfMemoryError:
                row["oom"] = True
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def time_forward(net: torch.nn.Module, x: torch.Tensor, ac: Any, device: torch.device, steps: int) -> float:
    """Median seconds of a frozen encoder forward on images x [B, C, S, S]."""
    net.eval()

    def fwd() -> None:
        with torch.no_grad(), ac():
            net.encoder(x)

    return timed(fwd, device, steps)


def time_train_step(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, ac: Any, device: torch.device,
                    steps: int) -> float:
    """Median seconds of a full training step (encoder + head, AdamW) on images x [B, C, S, S]."""
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with ac():
            loss = torch.nn.functional.cross_entropy(net(x).float(), y)
        loss.backward()
        opt.step()

    return timed(step, device, steps)


def e2e(args: argparse.Namespace, device: torch.device, reference: bool) -> list[dict[str, Any]]:
    """Frozen-encoder training with and without the feature cache; epoch timings from metrics."""
    from harvit.training import train

    rows = []
    out = Path(tempfile.mkdtemp(prefix="harvit-speed-"))
    for cache in (True, False):
        if reference:
            explicit = {"preset": "vit-b8-frozen", "pretrained": bool(args.pretrained_path),
                        "pretrained_path": args.pretrained_path, "eval_batch_size": args.eval_batch_size}
            label = "reference 20-epoch run (vit-b8-frozen)"
        else:
            explicit = {"preset": "cpu", "freeze_encoder": True, "epochs": args.cache_epochs,
                        "early_stopping_patience": 0}
            label = "cpu preset, frozen encoder"
        explicit.update({"dataset": args.dataset, "feature_cache": cache, "threads": args.threads,
                         "device": device.type, "progress": False,
                         "tensorboard": False, "output_dir": str(out), "run_name": f"{'ref' if reference else 'cpu'}"
                         f"-{'cache' if cache else 'nocache'}"})
        if not cache and not reference:
            explicit["epochs"] = min(args.cache_epochs, 2)
        cfg, _ = resolve(explicit, cuda_available=device.type == "cuda")
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = train(cfg)
        wall = time.perf_counter() - t0
        hist = [json.loads(s) for s in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
        first = hist[0]["epoch_time_s"] + hist[0].get("feature_cache_s", 0.0)
        later = [h["epoch_time_s"] for h in hist[1:]]
        row = {"run": label, "cache": cache, "epochs": len(hist), "wall_s": round(wall, 2),
               "first_epoch_s": round(first, 3),
               "later_epoch_median_s": round(statistics.median(later), 4) if later else None,
               "speedup_later_vs_first": round(first / statistics.median(later), 1) if later else None,
               "test_accuracy": res.test["accuracy"], "total_time_s": res.total_time_s}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch-sizes", type=lambda s: [int(v) for v in s.split(",")], default=[16, 64, 256])
    p.add_argument("--reference-cpu-batch-sizes", type=lambda s: [int(v) for v in s.split(",")], default=[2])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--skip-reference", action="store_true", help="leave out the ViT-B/8 rows")
    p.add_argument("--skip-e2e", action="store_true")
    p.add_argument("--e2e-reference", action="store_true", help="the 20-epoch vit-b8-frozen run (GPU)")
    p.add_argument("--pretrained-path", default=None)
    p.add_argument("--eval-batch-size", type=int, default=1024)
    p.add_argument("--cache-epochs", type=int, default=6)
    p.add_argument("--dataset", default="hapt6")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default); 1 is robust "
                   "on a busy machine")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    rate = matmul_rate(device)
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "torch": torch.__version__, "matmul": rate,
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine_info(),
    }
    print(f"machine: {describe_machine(result['machine'])}", flush=True)
    result["throughput"] = throughput(args, device, rate)
    if not args.skip_e2e:
        result["cache"] = e2e(args, device, reference=False)
        if args.e2e_reference:
            result["reference"] = e2e(args, device, reference=True)
    if args.json:
        write_json(args.json, result)
    print(format_table(result))
    return result


def format_table(r: dict[str, Any]) -> str:
    lines = [f"device {r['device_name']} ({r['threads']} threads), matmul {r['matmul']['dtype']} "
             f"{r['matmul']['tflops']:.2f} TFLOP/s",
             "| encoder | batch | GFLOPs/img | fwd img/s | MFU | train img/s | peak MB (fwd/train) |",
             "|---|---|---|---|---|---|---|"]
    for t in r["throughput"]:
        if t.get("oom"):
            lines.append(f"| {t['encoder']} | {t['batch']} | {t['gflops_per_image']:.2f} | OOM | | | |")
            continue
        lines.append(f"| {t['encoder']} | {t['batch']} | {t['gflops_per_image']:.2f} | {t['forward_images_per_s']:.3g}"
                     f" | {100 * t['mfu']:.1f}% | {t['train_step_images_per_s']:.3g} | "
                     f"{t['forward_peak_mb']:.0f} / {t['train_peak_mb']:.0f} |")
    for key in ("cache", "reference"):
        for c in r.get(key, []):
            lines.append(f"{c['run']}, cache {'on' if c['cache'] else 'off'}: {c['epochs']} epochs, wall "
                         f"{c['wall_s']:.1f}s, first epoch {c['first_epoch_s']:.2f}s, later epochs "
                         f"{c['later_epoch_median_s']}s (x{c['speedup_later_vs_first']}), test acc "
                         f"{c['test_accuracy']:.4f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
