"""benchmarks/first_run.py reads each step's time from a run's log lines."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "first_run.py"


def test_step_times_from_a_logged_run():
    spec = importlib.util.spec_from_file_location("first_run", SCRIPT)
    fr = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fr)
    lines = [(1.0, "device: cpu"), (4.0, "features: window statistics of 11435 windows ..."),
             (6.0, "features: window statistics of 11435 windows in 2.0 s"),
             (7.0, "features: convolution features (9996 per window) of 11435 windows ..."),
             (30.0, "features: convolution features (9996 per window) of 11435 windows in 23.0 s"),
             (31.0, "features: window statistics of 3100 windows ..."),
             (32.0, "features: window statistics of 3100 windows in 1.0 s"),
             (40.0, "features: convolution features (9996 per window) of 3100 windows in 8.0 s"),
             (41.0, "model: ViT ..."), (50.0, "epoch 1/2: ..."), (60.0, "epoch 2/2: ..."),
             (65.0, "test: accuracy 0.98"), (70.0, "report: r/report.md"), (70.5, "done in 70 s wall")]
    assert fr.step_times(lines) == {"start and data": 5.0, "statistics": 3.0, "convolution features": 32.0,
                                    "model": 1.0, "epochs": 19.0, "test": 5.0, "report": 5.0, "done": 0.5}
