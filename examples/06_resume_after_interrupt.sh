#!/usr/bin/env bash
# 06 - Resume after an interruption: training is stopped with SIGINT (as Ctrl-C would) after
# STOP_AFTER seconds of training; harvit saves latest.pt at the next step (atomically) and exits with 130.
# The same command with --resume continues from that step, schedule and RNG state included.
# Time: 56 s on 2 CPU cores (measured 2026-12-08, see examples/README.md).
set -euo pipefail

DATA_DIR="${HARVIT_DATA_DIR:-$HOME/.cache/harvit/data}"
OUT="${OUT:-runs/examples}"
# TRAIN_ARGS: extra flags for every `harvit train` below (later flags win), e.g.
# TRAIN_ARGS="--epochs 1 --img-size 8" for a quick try; the tests run each example so, at tiny scale.
read -r -a TRAIN_ARGS <<< "${TRAIN_ARGS:-}"
RUN="resume_demo"
STOP_AFTER="${STOP_AFTER:-5}"

# prepare the windows cache first, so the clock below counts training only
harvit data info hapt6 --data-dir "$DATA_DIR" > /dev/null

# train in the background; once its log says the model is built (training starts), wait STOP_AFTER s, then SIGINT
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
harvit train --preset cpu --dataset hapt6 --data-dir "$DATA_DIR" --epochs 4 \
    --output-dir "$OUT" --run-name "$RUN" "${TRAIN_ARGS[@]}" > >(tee "$log") 2>&1 &
pid=$!
until grep -q "^model: " "$log" 2>/dev/null || ! kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
sleep "$STOP_AFTER"
kill -INT "$pid" 2>/dev/null || true
status=0
wait "$pid" || status=$?

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
    --output-dir "$OUT" --run-name "$RUN" "${TRAIN_ARGS[@]}" --resume
