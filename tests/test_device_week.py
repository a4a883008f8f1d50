"""benchmarks/device_week.py builds long GENEActiv files that the device reader reads as the real file repeated."""

import importlib.util
import sys
from pathlib import Path

import numpy as np

from harvit.data.devices import read_device

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "device_week.py"


def load_script():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        spec = importlib.util.spec_from_file_location("device_week", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(SCRIPT.parent))


def test_days_of_pages_read_as_the_source_repeated(devices_dir: Path, tmp_path: Path) -> None:
    week = load_script()
    source = devices_dir / "GENEActiv_testfile.bin"
    out = tmp_path / "long.bin"
    pages, samples = week.write_days(source, out, 0.02)  # 28.8 minutes
    assert pages == int(0.02 * 86400 / week.PAGE_S)
    real, rec = read_device(source), read_device(out)
    assert len(rec) == samples > pages * 290 and rec.info["blocks_skipped"] == 0
    per_file = len(real)
    np.testing.assert_array_equal(rec.acc[per_file:2 * per_file], real.acc)  # the pages again, unchanged
    steps = np.diff(rec.time_ns) / 1e9
    assert np.all(steps > 0) and abs(np.median(steps) - 1 / 85.7) < 1e-4
    span = (rec.time_ns[-1] - rec.time_ns[0]) / 1e9
    assert abs(span - pages * week.PAGE_S) < 5
