#!/usr/bin/env bash
# 03 - hapt12: the 6 basic activities plus the 6 postural transitions (stand-to-sit, sit-to-lie, ...),
# exactly the official HAPT window counts. Transitions are short and rare: read the per-class
# accuracy and the confusion matrix in the report, not only the overall accuracy.
# Needs: HAPT in $HARVIT_DATA_DIR/hapt/.
# Time: 62 s on 2 CPU cores (cpu preset; measured 2026-12-08, see examples/README.md); a few min on a GPU
# with PRESET=vit-b8-frozen (estimate).
set -euo pipefail

DATA_DIR="${HARVIT_DATA_DIR:-$HOME/.cache/harvit/data}"
OUT="${OUT:-runs/examples}"
# TRAIN_ARGS: extra flags for every `harvit train` below (later flags win), e.g.
# TRAIN_ARGS="--epochs 1 --img-size 8" for a quick try; the tests run each example so, at tiny scale.
read -r -a TRAIN_ARGS <<< "${TRAIN_ARGS:-}"
PRESET="${PRESET:-cpu}"
RUN="hapt12_$PRESET"

harvit data info hapt12 --data-dir "$DATA_DIR"
harvit train --preset "$PRESET" --dataset hapt12 --data-dir "$DATA_DIR" \
    --output-dir "$OUT" --run-name "$RUN" "${TRAIN_ARGS[@]}"
harvit report "$OUT/$RUN"
echo "per-class results: $OUT/$RUN/report.md and $OUT/$RUN/plots/"
