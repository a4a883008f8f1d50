#!/usr/bin/env bash
# 07 - Two-stage fine-tuning with --init-from: stage 1 trains the head on a frozen pretrained
# ViT-B/8 (vit-b8-frozen preset, fast thanks to the feature cache); stage 2 starts from stage 1's weights
# (encoder + head; --init-from takes the stage-1 run folder), unfreezes the encoder and trains
# everything at a 20x lower learning rate, in its own run folder (a folder is never trained twice).
# The same two commands as the README's "Two-stage fine-tuning", with a data folder and a device.
# Needs: a CUDA GPU; PRETRAINED=/path/to/vit_base_patch8_224 .safetensors (else --pretrained, online).
# Time: stage 1 a few minutes, stage 2 roughly 5-15 min per epoch on one recent GPU (estimate).
set -euo pipefail

DATA_DIR="${HARVIT_DATA_DIR:-$HOME/.cache/harvit/data}"
OUT="${OUT:-runs/examples}"
DEVICE="${DEVICE:-cuda}"  # DEVICE=cpu: the same path on the CPU (slow at full size)
# TRAIN_ARGS: extra flags for every `harvit train` below (later flags win), e.g.
# TRAIN_ARGS="--epochs 1 --img-size 8" for a quick try; the tests run each example so, at tiny scale.
read -r -a TRAIN_ARGS <<< "${TRAIN_ARGS:-}"
STAGE2_EPOCHS="${STAGE2_EPOCHS:-10}"

if [[ -n "${PRETRAINED:-}" ]]; then
    weights=(--pretrained-path "$PRETRAINED")
else
    weights=(--pretrained)
fi

# stage 1: frozen encoder, head only
harvit train --preset vit-b8-frozen --dataset hapt6 --data-dir "$DATA_DIR" --device "$DEVICE" \
    "${weights[@]}" --freeze-encoder --output-dir "$OUT" --run-name ft_stage1 "${TRAIN_ARGS[@]}"

# stage 2: everything trainable, lower lr; the weights come from stage 1 (no pretrained download)
harvit train --preset vit-b8-frozen --dataset hapt6 --data-dir "$DATA_DIR" --device "$DEVICE" \
    --no-pretrained --init-from "$OUT/ft_stage1" --no-freeze-encoder \
    --epochs "$STAGE2_EPOCHS" --lr 5e-5 --output-dir "$OUT" --run-name ft_stage2 "${TRAIN_ARGS[@]}"

python3 - "$OUT" <<'PY'
import json, sys
from pathlib import Path

for run in ("ft_stage1", "ft_stage2"):
    r = json.loads((Path(sys.argv[1]) / run / "training_results.json").read_text())
    print(f"{run}: test accuracy {r['test_accuracy']:.4f}, macro-F1 {r['test_macro_f1']:.4f}")
PY
