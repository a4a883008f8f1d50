"""harvit's batched image encoders vs pyts, on the same windows, same machine, same run.

Both sides encode the same N univariate series of length T (a "window" below is one univariate
series on both sides, so windows/s are comparable), in chunks of ``--batch`` series per call, at
image side T and at a smaller side (pyts ``image_size``; for the recurrence plot, which has no
``image_size`` in pyts, pyts' own PAA first). Inputs are each series min-max scaled to [-1, 1];
pyts' GAF gets ``sample_range=None`` so it does not rescale again. Timings are the best of
``--repeats`` interleaved runs (robust to a busy machine); the outputs are compared too
("differ": series whose image differs from pyts' by more than 1e-3 anywhere).

    python benchmarks/encoders_vs_pyts.py --windows 2000 --threads 2 --json bench.json

Real HAPT windows are used when ``harvit.data.load_dataset`` exists and ``HARVIT_DATA_DIR`` is
set (all 9 channels of the hapt6 training windows, flattened to univariate series); otherwise
random-walk series of length 128. The output says which.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from harvit.imaging.encodings import encode
from harvit.utils.machine import machine_info

ENCODERS = ("gasf", "gadf", "mtf", "rp")


def load_series(n: int, seed: int) -> tuple[np.ndarray, str]:
    """N univariate series [n, T] float64 scaled per series to [-1, 1], and where they came from."""
    rng = np.random.default_rng(seed)
    data_dir = os.environ.get("HARVIT_DATA_DIR", "").strip()
    source = ""
    x: np.ndarray | None = None
    if not data_dir:
        source = "random-walk series, T=128 (HARVIT_DATA_DIR not set)"
    else:
        try:
            from harvit.data import load_dataset

            windows = load_dataset("hapt6", data_dir).train
            series = windows.x.reshape(-1, windows.x.shape[-1]).astype(np.float64)
            x = series[rng.choice(len(series), size=min(n, len(series)), replace=False)]
            c, t = windows.x.shape[1:]
            source = f"real HAPT windows (hapt6 train, {c} channels flattened to univariate series, T={t})"
        except ImportError:
            source = "random-walk series, T=128 (harvit.data.load_dataset not available)"
        except Exception as e:  # any data problem: fall back to synthetic series
            source = f"random-walk series, T=128 (HAPT not loadable: {str(e).splitlines()[0][:120]})"
    if x is None:
        x = np.cumsum(rng.normal(size=(n, 128)), axis=1)
    lo, hi = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
    return (x - lo) / np.maximum(hi - lo, 1e-12) * 2.0 - 1.0, source


class _PaaThen:
    """pyts PAA to ``size`` points, then another pyts transformer (the recurrence plot has no image_size)."""

    def __init__(self, size: int, then: Any) -> None:
        from pyts.approximation import PiecewiseAggregateApproximation

        self.paa = PiecewiseAggregateApproximation(window_size=None, output_size=size)
        self.then = then

    def transform(self, x: np.ndarray) -> np.ndarray:
        return self.then.transform(self.paa.transform(x))


def pyts_transformer(name: str, size: int, t: int) -> Any:
    from pyts.image import GramianAngularField, MarkovTransitionField, RecurrencePlot

    if name == "gasf":
        return GramianAngularField(image_size=size, sample_range=None, method="summation")
    if name == "gadf":
        return GramianAngularField(image_size=size, sample_range=None, method="difference")
    if name == "mtf":
        return MarkovTransitionField(image_size=size, n_bins=8, strategy="quantile")
    if name == "rp":
        rp = RecurrencePlot(threshold=None)
        return rp if size == t else _PaaThen(size, rp)
    raise ValueError(name)


def _chunks(n: int, batch: int) -> list[slice]:
    step = n if batch <= 0 else batch
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_once(fn: Callable[[], None], device: torch.device | None = None) -> float:
    if device is not None:
        _sync(device)
    start = time.perf_counter()
    fn()
    if device is not None:
        _sync(device)
    return time.perf_counter() - start


def bench_one(name: str, size: int, x_np: np.ndarray, x_t: torch.Tensor, batch: int, repeats: int,
              device: torch.device) -> dict[str, float]:
    """Best-of-``repeats`` windows/s of harvit and pyts for one encoder at one image side."""
    t = x_np.shape[1]
    pyts = pyts_transformer(name, size, t)
    parts = _chunks(len(x_np), batch)

    def run_harvit() -> None:
        with torch.no_grad():
            for p in parts:
                encode(x_t[p], [name], size, {"mtf_bins": 8})

    def run_pyts() -> None:
        for p in parts:
            pyts.transform(x_np[p])

    # warm-up (numba, allocator, CUDA kernels) and agreement on every series
    max_diff, n_off = 0.0, 0
    for p in parts:
        with torch.no_grad():
            ours = encode(x_t[p], [name], size, {"mtf_bins": 8})[:, 0].double().cpu().numpy()
        diff = np.abs(ours - pyts.transform(x_np[p])).reshape(len(ours), -1).max(axis=1)
        max_diff, n_off = max(max_diff, float(diff.max())), n_off + int((diff > 1e-3).sum())
    best_h = best_p = float("inf")
    for _ in range(repeats):
        best_h = min(best_h, time_once(run_harvit, device))
        best_p = min(best_p, time_once(run_pyts))
    n = len(x_np)
    return {
        "image_size": size,
        "harvit_windows_per_s": n / best_h,
        "pyts_windows_per_s": n / best_p,
        "ratio": best_p / best_h,
        "max_abs_diff": max_diff,
        "series_differing": n_off,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--windows", type=int, default=2000, help="univariate series encoded by each side")
    ap.add_argument("--device", default="cpu", help="torch device for harvit (pyts is CPU only)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--batch", type=int, default=64, help="series per call on both sides (0: all at once)")
    ap.add_argument("--small-size", type=int, default=32, help="the smaller image side")
    ap.add_argument("--encoders", default=",".join(ENCODERS), help="comma-separated subset of the default")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per side; the best counts")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write the results here (atomic)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message="Some quantiles are equal")  # pyts, on flat real windows

    try:
        import pyts
    except ImportError:
        print("pyts is not installed: pip install 'harvit[bench]'", file=sys.stderr)
        return 2
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    names = [e.strip() for e in args.encoders.split(",") if e.strip()]
    unknown = sorted(set(names) - set(ENCODERS))
    if unknown:
        print(f"--encoders: unknown {', '.join(unknown)}; expected some of {', '.join(ENCODERS)}",
              file=sys.stderr)
        return 2

    x_np, source = load_series(args.windows, args.seed)
    n, t = x_np.shape
    x_t = torch.tensor(x_np, dtype=torch.float32, device=device).unsqueeze(1)  # [N, 1, T]
    sizes = [t] + ([args.small_size] if 0 < args.small_size < t else [])

    print(f"data: {source}")
    print(f"{n} univariate series of length {t} per side (one 'window' = one univariate series on both "
          f"sides); chunks of {args.batch or n} series per call; best of {args.repeats}")
    cpu = platform.processor() or platform.machine()
    print(f"harvit: torch {torch.__version__} on {device}, {torch.get_num_threads()} CPU threads, float32 | "
          f"pyts {pyts.__version__}: numba, single-threaded, float64 | {cpu}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    results: dict[str, Any] = {}
    header = (f"{'encoder':<8}{'size':>6}{'harvit win/s':>15}{'pyts win/s':>13}{'ratio':>8}{'max |diff|':>12}"
              f"{'differ':>8}")
    print(header)
    print("-" * len(header))
    for size in sizes:
        for name in names:
            r = bench_one(name, size, x_np, x_t, args.batch, args.repeats, device)
            results[name if size == t else f"{name}@{size}"] = r
            print(f"{name:<8}{size:>6}{r['harvit_windows_per_s']:>15,.0f}{r['pyts_windows_per_s']:>13,.0f}"
                  f"{r['ratio']:>7.1f}x{r['max_abs_diff']:>12.1e}{r['series_differing']:>8}")
    results["_meta"] = {
        "source": source, "windows": n, "series_length": t, "sizes": sizes, "batch": args.batch or n,
        "repeats": args.repeats, "device": str(device), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "pyts": pyts.__version__, "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg()[0], "machine": machine_info(),
        "note": "windows/s = univariate series per second, same series on both sides; keys 'name@S' are "
                "at the smaller image side S; series_differing = series whose image differs from pyts by "
                "> 1e-3 anywhere (float32 vs float64 near a quantile edge can move one MTF bin)",
    }
    if args.json:
        from harvit.utils.atomic import write_json

        write_json(args.json, results)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
