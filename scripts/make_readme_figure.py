"""Compose the README's picture from a trained run: its encoded-image grid beside its test confusion matrix.

The left panel is the run's own report plot ``plots/encoded_images.png`` (what the model sees: encoded
test windows of each class); the right one is the test confusion matrix of ``training_results.json``.
Regenerate the committed picture with::

    HARVIT_DATA_DIR=../shared/data harvit train --preset cpu --dataset hapt6
    python scripts/make_readme_figure.py checkpoints/optimized            # -> docs/images/overview.png

The output is written atomically and kept under :data:`MAX_BYTES` by lowering the resolution.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from harvit.utils.atomic import write_bytes  # noqa: E402
from harvit.utils.errors import HarvitError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GRID = "encoded_images.png"
MAX_BYTES = 150_000
"""The committed picture's size limit (the README stays light to clone and to load)."""


def read_results(run: Path) -> dict:
    """The run's ``training_results.json`` (classes, confusion matrix, test accuracy)."""
    path = run / "training_results.json"
    if not path.is_file():
        raise HarvitError(f"{path} not found: expected a finished run folder")
    return json.loads(path.read_text())


def compose(run: Path, dpi: int = 100) -> bytes:
    """PNG bytes: the run's encoded-image grid (left) beside its test confusion matrix in counts (right).

    Raises:
        HarvitError: ``run`` lacks its results or its report's grid (trained with ``--no-report``).
    """
    grid_path = run / "plots" / GRID
    if not grid_path.is_file():
        raise HarvitError(f"{grid_path} not found: make_readme_figure needs a run whose report was written "
                          "(train without --no-report, or run `harvit report RUN`)")
    results = read_results(run)
    grid = plt.imread(grid_path)
    cm = np.asarray(results["confusion_matrix"], dtype=float)
    classes = [str(c).replace("_", " ").lower() for c in results["classes"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11.0, 6.2), gridspec_kw={"width_ratios": [1.25, 1.0]},
                                     layout="constrained")
    left.imshow(grid, interpolation="antialiased")
    left.set_title("what the model sees: test windows encoded as GASF images", fontsize=10)
    left.axis("off")
    right.imshow(cm / cm.sum(axis=1, keepdims=True).clip(min=1), cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            right.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=9,
                       color="white" if cm[i, j] > 0.5 * cm[i].sum() else "black")
    right.set_xticks(range(len(classes)), classes, rotation=35, ha="right", fontsize=9)
    right.set_yticks(range(len(classes)), classes, fontsize=9)
    right.set_xlabel("predicted")
    right.set_ylabel("true")
    dataset = results.get("dataset") or "test"
    right.set_title(f"{dataset} test subjects: accuracy {100 * results['test_accuracy']:.2f}%", fontsize=10)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a trained run folder with its report (plots/)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "overview.png",
                        help="PNG to write (default: docs/images/overview.png)")
    args = parser.parse_args(argv)
    try:
        for dpi in (100, 85, 70, 55):
            data = compose(args.run, dpi=dpi)
            if len(data) <= MAX_BYTES:
                break
        else:
            raise HarvitError(f"the picture is {len(data)} bytes even at {dpi} dpi; expected <= {MAX_BYTES}")
    except HarvitError as e:
        print(f"make_readme_figure: error: {e}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(args.out, data)
    print(f"{args.out}: {len(data):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
