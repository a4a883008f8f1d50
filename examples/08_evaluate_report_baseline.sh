#!/usr/bin/env bash
# 08 - Look at a finished run: test and validation metrics (JSON), the report (plots + report.md),
# and the classical baseline (logistic regression and boosted trees on 300 hand-made window
# statistics) on the run's own windows and split (--run), to see what the images add.
# Needs: a run folder, by default example 01's (RUN=... to choose another).
# Time: 19 s on 2 CPU cores after example 01 (measured 2026-12-08, see examples/README.md).
set -euo pipefail

DATA_DIR="${HARVIT_DATA_DIR:-$HOME/.cache/harvit/data}"
OUT="${OUT:-runs/examples}"
RUN="${RUN:-$OUT/quickstart_cpu}"
# BASELINE_ARGS: extra flags for `harvit baseline` (e.g. "--models logreg" for a quick try)
read -r -a BASELINE_ARGS <<< "${BASELINE_ARGS:-}"

harvit evaluate "$RUN" --split test --data-dir "$DATA_DIR" --json "$RUN/evaluation_test.json"
harvit evaluate "$RUN" --split val --data-dir "$DATA_DIR" --json "$RUN/evaluation_val.json"
harvit baseline --run "$RUN" --data-dir "$DATA_DIR" --json "$OUT/baseline_hapt6.json" "${BASELINE_ARGS[@]}"  # the run's own windows
harvit report "$RUN"
