#!/usr/bin/env bash
# 09 - Use a trained model on a raw recording, then export it to ONNX and run the ONNX graph.
# One HAPT recording (acc + gyro text files, 50 Hz; by default experiment 03 of user 02, a test
# subject) is unpacked from the zip to a temporary folder; `harvit predict` writes per-window
# predictions (CSV) and prints the share of time per activity and the first 10 windows; `harvit
# export --what window` writes model.onnx (+ .json sidecar: the whole model, convolution features and
# window statistics inside) and checks it against PyTorch; a short onnxruntime
# script then reproduces the predictions.
# Needs: a run folder trained on 9-channel HAR data (RUN=..., default example 01's), onnx + onnxruntime.
# Time: 15 s on 2 CPU cores after example 01 (measured 2026-12-08, see examples/README.md).
set -euo pipefail

DATA_DIR="${HARVIT_DATA_DIR:-$HOME/.cache/harvit/data}"
OUT="${OUT:-runs/examples}"
RUN="${RUN:-$OUT/quickstart_cpu}"
EXP="${EXP:-03}"
USER_ID="${USER_ID:-02}"
ZIP="$DATA_DIR/hapt/HAPT_Data_Set_RawData_and_labels.zip"

if [[ ! -f "$ZIP" ]]; then
    echo "no $ZIP: set HARVIT_DATA_DIR to a folder holding hapt/HAPT_Data_Set_RawData_and_labels.zip" >&2
    exit 1
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

python3 - "$ZIP" "$EXP" "$USER_ID" "$tmp" <<'PY'
import sys, zipfile
from pathlib import Path

zip_path, exp, user, dest = sys.argv[1:5]
with zipfile.ZipFile(zip_path) as z:
    for sensor in ("acc", "gyro"):
        name = f"HAPT Data Set/RawData/{sensor}_exp{exp}_user{user}.txt"
        Path(dest, f"{sensor}.txt").write_bytes(z.read(name))  # fixed names: no path from the archive
print(f"extracted exp {exp} user {user} to {dest}")
PY

mkdir -p "$OUT/predict" "$OUT/export"
harvit predict "$RUN" --acc "$tmp/acc.txt" --gyro "$tmp/gyro.txt" --rate-hz 50 --device auto \
    --out "$OUT/predict/exp${EXP}_user${USER_ID}.csv"

# the same windows, each by its own prediction (no HMM smoothing): what the ONNX graph below computes
harvit predict "$RUN" --acc "$tmp/acc.txt" --gyro "$tmp/gyro.txt" --rate-hz 50 --device auto --smooth none \
    --out "$OUT/predict/exp${EXP}_user${USER_ID}_unsmoothed.csv" > /dev/null

harvit export "$RUN" --what window --out "$OUT/export/model.onnx"

# Deployment sketch: the same windows through onnxruntime, fed as the sidecar describes.
python3 - "$OUT/export/model.onnx" "$tmp" "$OUT/predict/exp${EXP}_user${USER_ID}_unsmoothed.csv" <<'PY'
import csv, json, sys

import numpy as np
import onnxruntime as ort

from harvit.data.signals import preprocess_inertial, sliding_windows

onnx_path, rec, pred_csv = sys.argv[1:4]
meta = json.load(open(onnx_path + ".json"))
acc, gyro = np.loadtxt(f"{rec}/acc.txt"), np.loadtxt(f"{rec}/gyro.txt")
sig = preprocess_inertial(acc, gyro, meta["rate_hz"])
windows = sliding_windows(sig, meta["window_length"], meta["stride"]).astype(np.float32)
feeds = {"signals": windows}  # the window alone: the graph computes its own window statistics
session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
labels = [meta["classes"][i] for i in session.run(None, feeds)[0].argmax(1)]
with open(pred_csv) as f:
    torch_labels = [row["activity"] for row in csv.DictReader(f)]
agree = np.mean([a == b for a, b in zip(labels, torch_labels)])
print(f"onnxruntime: {len(labels)} windows, {100 * agree:.1f}% the same label as harvit predict --smooth none")
PY
