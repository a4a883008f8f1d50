#!/usr/bin/env bash
# 04 - Sensor mode with several encodings: each sensor's x/y/z becomes one image (3 views per
# window: body_acc, body_gyro, total_acc), every axis under GASF, GADF, MTF, recurrence plot and
# spectrogram (3 axes x 5 encodings = 15 image channels). A window's prediction is the mean of
# its 3 views' log-probabilities.
# Time: 100 s on 2 CPU cores (measured 2026-12-08, see examples/README.md).
set -euo pipefail

DATA_DIR="${HARVIT_DATA_DIR:-$HOME/.cache/harvit/data}"
OUT="${OUT:-runs/examples}"
# TRAIN_ARGS: extra flags for every `harvit train` below (later flags win), e.g.
# TRAIN_ARGS="--epochs 1 --img-size 8" for a quick try; the tests run each example so, at tiny scale.
read -r -a TRAIN_ARGS <<< "${TRAIN_ARGS:-}"
RUN="sensor_5enc"

harvit train --preset cpu --dataset hapt6 --data-dir "$DATA_DIR" \
    --mode sensor --encodings gasf,gadf,mtf,rp,spec --mtf-bins 8 --epochs 6 \
    --output-dir "$OUT" --run-name "$RUN" "${TRAIN_ARGS[@]}"
harvit report "$OUT/$RUN"
