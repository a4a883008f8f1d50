#!/usr/bin/env bash
# 10 - Many processes: DistributedDataParallel through torchrun (one process per GPU, or per CPU share).
# `--batch-size` x `--accum-steps` stays the global batch: each process takes its share of every step,
# so the optimisation is the one of a single process. Rank 0 alone writes the run folder.
# With CUDA GPUs: the vit-b8-frozen preset on hapt6, one process per GPU (NCCL).
# Without: the cpu preset for 2 epochs, 2 processes on the CPU (gloo) with --device cpu.
# Needs: HAPT in $HARVIT_DATA_DIR/hapt/. Time: 69 s on 2 CPU cores (measured 2026-12-08);
# on N GPUs, about example 02's divided by N (estimate).
# Several machines: the same command on each, with --nnodes=M --node_rank=i --master_addr=HOST --master_port=PORT
# in place of --standalone (see the README, "Many processes, many machines").
set -euo pipefail

DATA_DIR="${HARVIT_DATA_DIR:-$HOME/.cache/harvit/data}"
OUT="${OUT:-runs/examples}"
# TRAIN_ARGS: extra flags for every `harvit train` below (later flags win), e.g.
# TRAIN_ARGS="--epochs 1 --img-size 8" for a quick try; the tests run each example so, at tiny scale.
read -r -a TRAIN_ARGS <<< "${TRAIN_ARGS:-}"
GPUS="$(python3 -c 'import torch; print(torch.cuda.device_count())')"

if [ "$GPUS" -gt 0 ]; then
    NPROC="${NPROC:-$GPUS}"
    torchrun --standalone --nproc_per_node="$NPROC" -m harvit train --preset vit-b8-frozen --dataset hapt6 \
        --data-dir "$DATA_DIR" --device cuda --output-dir "$OUT" --run-name "ddp_${NPROC}gpu" "${TRAIN_ARGS[@]}"
else
    NPROC="${NPROC:-2}"
    torchrun --standalone --nproc_per_node="$NPROC" -m harvit train --preset cpu --dataset hapt6 --epochs 2 \
        --data-dir "$DATA_DIR" --device cpu --output-dir "$OUT" --run-name "ddp_${NPROC}cpu" "${TRAIN_ARGS[@]}"
fi
