#!/usr/bin/env bash
# 10 - Multi-GPU training with torchrun (one process per GPU, DistributedDataParallel).
# NOT AVAILABLE YET: harvit's trainer does not implement DDP. Launched under torchrun today, every
# process would train the whole model on its own and all would write the same run folder. This
# script therefore checks for DDP support in harvit.train first and stops with a message when it is
# missing. It shows the intended command for when DDP lands.
# Needs: N CUDA GPUs (NPROC, default: all visible). Time: as example 02, divided by ~N (once DDP exists).
set -euo pipefail

DATA_DIR="${HARVIT_DATA_DIR:-$HOME/.cache/harvit/data}"
OUT="${OUT:-runs/examples}"
NPROC="${NPROC:-$(python3 -c 'import torch; print(max(1, torch.cuda.device_count()))')}"

if ! python3 -c 'import inspect, sys, harvit.train as t; sys.exit(0 if "init_process_group" in inspect.getsource(t) else 1)'; then
    echo "harvit train does not support DDP yet (no torch.distributed process group in harvit.train);" >&2
    echo "use a single GPU (example 02) until it does." >&2
    exit 2
fi

torchrun --standalone --nproc_per_node="$NPROC" -m harvit train --preset pix2seq --dataset hapt6 \
    --data-dir "$DATA_DIR" --device cuda --output-dir "$OUT" --run-name "ddp_${NPROC}gpu"
