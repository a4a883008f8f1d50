#!/usr/bin/env bash
# 06 - Resume after an interruption: training is stopped with SIGINT (as Ctrl-C would) after
# STOP_AFTER seconds; harvit saves latest.pt at the next step (atomically) and exits with 130.
# The same command with --resume continues from that step, schedule and RNG state included.
# Time: ~3-5 min on 2 CPU cores (measured: 4 epochs of ~25 s, interrupted and resumed, 130 s of training).
set -euo pipefail

DATA_DIR="${HARVIT_DATA_DIR:-$HOME/.cache/harvit/data}"
OUT="${OUT:-runs/examples}"
RUN="resume_demo"
STOP_AFTER="${STOP_AFTER:-45}"

# prepare the windows cache first, so the clock below counts training only
harvit data info hapt6 --data-dir "$DATA_DIR" > /dev/null

status=0
timeout --preserve-status --signal=INT "$STOP_AFTER" \
    harvit train --preset cpu --dataset hapt6 --data-dir "$DATA_DIR" --epochs 4 \
        --output-dir "$OUT" --run-name "$RUN" || status=$?

if [[ $status -eq 0 ]]; then
    echo "training finished within ${STOP_AFTER}s; nothing to resume (raise the epochs or lower STOP_AFTER)"
    exit 0
fi
if [[ ! -f "$OUT/$RUN/latest.pt" ]]; then
    echo "interrupted (exit $status) before the first checkpoint; raise STOP_AFTER" >&2
    exit 1
fi
echo "interrupted (exit $status); latest.pt saved. Resuming:"
harvit train --preset cpu --dataset hapt6 --data-dir "$DATA_DIR" --epochs 4 \
    --output-dir "$OUT" --run-name "$RUN" --resume
