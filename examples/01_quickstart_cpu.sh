#!/usr/bin/env bash
# 01 - Quickstart on a CPU: the `cpu` preset (a small ViT trained from scratch on small GASF images
# of all 9 channels stacked) on hapt6, the 6 basic activities of HAPT, then the test metrics.
# Needs: HAPT in $HARVIT_DATA_DIR/hapt/ (else the official zip is downloaded to the default cache).
# Time: 65 s on 2 CPU cores, the windows cache prepared on the way (measured 2026-12-08, see
# examples/README.md); longer on a busy machine.
set -euo pipefail

DATA_DIR="${HARVIT_DATA_DIR:-$HOME/.cache/harvit/data}"
OUT="${OUT:-runs/examples}"
# TRAIN_ARGS: extra flags for every `harvit train` below (later flags win), e.g.
# TRAIN_ARGS="--epochs 1 --img-size 8" for a quick try; the tests run each example so, at tiny scale.
read -r -a TRAIN_ARGS <<< "${TRAIN_ARGS:-}"
RUN="quickstart_cpu"

harvit data info hapt6 --data-dir "$DATA_DIR"
harvit train --preset cpu --dataset hapt6 --data-dir "$DATA_DIR" --device cpu \
    --output-dir "$OUT" --run-name "$RUN" "${TRAIN_ARGS[@]}"
harvit evaluate "$OUT/$RUN" --split test --data-dir "$DATA_DIR" --device cpu
echo "run folder: $OUT/$RUN (report.md, plots/, metrics.jsonl, best.pt)"
