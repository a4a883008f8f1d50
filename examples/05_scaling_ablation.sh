#!/usr/bin/env bash
# 05 - Ablation pair: global scaling (per-channel range fitted on the training subjects; keeps the
# gravity offset that separates sitting, standing and laying) vs per-window min-max scaling (the
# classic GAF recipe; shape only). Same seed and settings otherwise; window statistics are turned
# off so the images alone carry the difference. Prints both test accuracies.
# Time: 108 s for both runs on 2 CPU cores (measured 2026-12-08, see examples/README.md).
set -euo pipefail

DATA_DIR="${HARVIT_DATA_DIR:-$HOME/.cache/harvit/data}"
OUT="${OUT:-runs/examples}"
# TRAIN_ARGS: extra flags for every `harvit train` below (later flags win), e.g.
# TRAIN_ARGS="--epochs 1 --img-size 8" for a quick try; the tests run each example so, at tiny scale.
read -r -a TRAIN_ARGS <<< "${TRAIN_ARGS:-}"
EPOCHS="${EPOCHS:-8}"

for scaling in global window; do
    harvit train --preset cpu --dataset hapt6 --data-dir "$DATA_DIR" --scaling "$scaling" \
        --no-window-stats --epochs "$EPOCHS" --seed 42 \
        --output-dir "$OUT" --run-name "scaling_$scaling" "${TRAIN_ARGS[@]}"
done

python3 - "$OUT" <<'PY'
import json, sys
from pathlib import Path

for scaling in ("global", "window"):
    r = json.loads((Path(sys.argv[1]) / f"scaling_{scaling}" / "training_results.json").read_text())
    print(f"--scaling {scaling:6s}: test accuracy {r['test_accuracy']:.4f}, macro-F1 {r['test_macro_f1']:.4f}")
PY
