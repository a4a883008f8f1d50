#!/usr/bin/env bash
# 02 - The GPU reference design (`vit-b8-frozen` preset, formerly `pix2seq`): a frozen ImageNet ViT-B/8 at 224 px on
# GASF+GADF+MTF images of each channel (flatten mode, 9 views per window) and a 768(+stats)->512
# MLP head. The frozen encoder runs once per view (feature cache), then only the head trains.
# Needs: a CUDA GPU and local ViT-B/8 weights: PRETRAINED=/path/to/model.safetensors (e.g. timm's
# vit_base_patch8_224.augreg2_in21k_ft_in1k); without PRETRAINED, --pretrained fetches them (online).
# Time: a few minutes on one recent GPU (estimate; dominated by encoding ~94k view images once).
set -euo pipefail

DATA_DIR="${HARVIT_DATA_DIR:-$HOME/.cache/harvit/data}"
OUT="${OUT:-runs/examples}"
DEVICE="${DEVICE:-cuda}"  # DEVICE=cpu: the same path on the CPU (slow at full size)
# TRAIN_ARGS: extra flags for every `harvit train` below (later flags win), e.g.
# TRAIN_ARGS="--epochs 1 --img-size 8" for a quick try; the tests run each example so, at tiny scale.
read -r -a TRAIN_ARGS <<< "${TRAIN_ARGS:-}"
RUN="pix2seq_hapt6"
DATASET="${DATASET:-hapt6}"

if [[ -n "${PRETRAINED:-}" ]]; then
    weights=(--pretrained-path "$PRETRAINED")
else
    weights=(--pretrained)
fi
harvit train --preset vit-b8-frozen --dataset "$DATASET" --data-dir "$DATA_DIR" --device "$DEVICE" \
    "${weights[@]}" --output-dir "$OUT" --run-name "$RUN" "${TRAIN_ARGS[@]}"
harvit evaluate "$OUT/$RUN" --data-dir "$DATA_DIR" --device "$DEVICE"
