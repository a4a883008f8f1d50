"""Bad input through the real CLI (issue 5): one clear line on stderr, exit 2, no traceback, and
every file that existed before is unchanged.

Each case builds its own folder (data, runs, config files), runs ``python -m harvit ...`` in it
as a real process, and the test of that case checks the outcome. The processes of all selected
cases run two at a time (the machine has two cores); each test then reads its own result.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from synth import write_uci_layout

from harvit.cli import build_parser, config_from_args
from harvit.training import build_run, fit

ROOT = Path(__file__).resolve().parents[1]
UCI = "uci_har/UCI HAR Dataset"
HAPT_ZIP = "hapt/HAPT_Data_Set_RawData_and_labels.zip"
TINY = ["--encoder", "vit_tiny_patch16_224", "--img-size", "16", "--patch-size", "8", "--embed-dim", "32",
        "--depth", "1", "--num-heads", "2", "--hidden-dims", "16", "--mode", "stack", "--encodings", "gasf",
        "--no-freeze-encoder", "--batch-size", "32", "--no-progress", "--no-tensorboard", "--device", "cpu",
        "--threads", "1", "--early-stopping-patience", "0", "--epochs", "1"]


def train(dataset: str, *extra: str) -> list[str]:
    """argv of a tiny one-epoch ``harvit train`` writing to ``runs/r`` in the case folder."""
    return ["train", "--dataset", dataset, *TINY, "--output-dir", "runs", "--run-name", "r", *extra]


# ---------------------------------------------------------------------------------------------
# Fake data: the UCI HAR layout (tests/synth.py) and a small HAPT raw-data zip
# ---------------------------------------------------------------------------------------------
HAPT_LABELS = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING",
               "STAND_TO_SIT", "SIT_TO_STAND", "SIT_TO_LIE", "LIE_TO_SIT", "STAND_TO_LIE", "LIE_TO_STAND"]
HAPT_EXPERIMENTS = [(1, 1), (2, 3), (3, 5), (4, 2)]  # (exp, user): users 1, 3, 5 train, user 2 is a test subject
N_SAMPLES = 600


def hapt_files() -> dict[str, str]:
    """The members of a HAPT raw-data zip: 4 recordings of 600 samples, two labelled segments each."""
    rng = np.random.default_rng(0)
    t = np.arange(N_SAMPLES) / 50.0
    files = {"activity_labels.txt": "".join(f"{i + 1} {n}\n" for i, n in enumerate(HAPT_LABELS))}
    rows = []
    for exp, user in HAPT_EXPERIMENTS:
        rows += [f"{exp} {user} {1 + exp % 3} 1 300", f"{exp} {user} {4 + exp % 3} 301 {N_SAMPLES}"]
        acc = np.column_stack([0.2 * np.sin(2 * np.pi * exp * t), 0.05 * rng.normal(size=N_SAMPLES),
                               1 + 0.02 * rng.normal(size=N_SAMPLES)])
        gyro = 0.1 * rng.normal(size=(N_SAMPLES, 3))
        for sensor, sig in (("acc", acc), ("gyro", gyro)):
            files[f"RawData/{sensor}_exp{exp:02d}_user{user:02d}.txt"] = "".join(
                f"{a:.7e} {b:.7e} {c:.7e}\n" for a, b, c in sig)
    files["RawData/labels.txt"] = "\n".join(rows) + "\n"
    return files


def write_hapt(data: Path, files: dict[str, str] | None = None, stored: bool = False) -> Path:
    path = data / HAPT_ZIP
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED) as z:
        for rel, text in (files or hapt_files()).items():
            z.writestr("HAPT Data Set/" + rel, text)
    return path


def edit_line(text: str, line: int, new: str) -> str:
    lines = text.splitlines()
    lines[line - 1] = new
    return "\n".join(lines) + "\n"


def hapt_with(member: str, line: int, new: str) -> dict[str, str]:
    files = hapt_files()
    files[member] = edit_line(files[member], line, new)
    return files


# ---------------------------------------------------------------------------------------------
# Shared inputs made once: UCI layouts (6 and 7 classes) and a trained tiny run
# ---------------------------------------------------------------------------------------------
@dataclass
class Assets:
    uci: Path    # data dir holding uci_har/ (6 classes)
    uci7: Path   # the same with a 7th class in activity_labels.txt
    run: Path    # a finished one-epoch run on `uci` (runs/r)


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Assets:
    root = tmp_path_factory.mktemp("cli-assets")
    uci = write_uci_layout(root / "uci", n_train=60, n_test=24)
    uci7 = root / "uci7"
    shutil.copytree(uci, uci7)
    labels = uci7 / UCI / "activity_labels.txt"
    labels.write_text(labels.read_text() + "7 JUMPING\n")
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARVIT_CACHE_DIR", str(root / "cache"))
        mp.setenv("HARVIT_OFFLINE", "1")
        argv = train("uci_har", "--data-dir", str(uci), "--output-dir", str(root / "runs"))
        fit(build_run(config_from_args(build_parser().parse_args(argv))[0]))
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(det)
    return Assets(uci, uci7, root / "runs" / "r")


def copy_data(src: Path, case: Path) -> Path:
    shutil.copytree(src, case / "data")
    return case / "data"


def copy_run(a: Assets, case: Path) -> Path:
    shutil.copytree(a.run, case / "runs" / "r")
    return case / "runs" / "r"


# ---------------------------------------------------------------------------------------------
# The cases: name -> (set-up returning argv, expected exit code, substrings of the error line)
# ---------------------------------------------------------------------------------------------
@dataclass
class Case:
    setup: Callable[[Path, Assets], list[str]]
    expect: tuple[str, ...]
    code: int = 2


CASES: dict[str, Case] = {}


def case(name: str, *expect: str, code: int = 2):
    def register(fn: Callable[[Path, Assets], list[str]]):
        CASES[name] = Case(fn, expect, code)
        return fn

    return register


# ---- data ---------------------------------------------------------------------------------------
@case("missing_dataset_folder", "UCI HAR data not found", "nowhere/uci_har")
def _(c, a):
    return train("uci_har", "--data-dir", "nowhere")


@case("missing_file_inside_dataset", f"{UCI}/train/Inertial Signals/body_gyro_x_train.txt is missing")
def _(c, a):
    (copy_data(a.uci, c) / UCI / "train/Inertial Signals/body_gyro_x_train.txt").unlink()
    return train("uci_har")


@case("truncated_zip", "HAPT_Data_Set_RawData_and_labels.zip is not a readable zip", "truncated or corrupt")
def _(c, a):
    z = write_hapt(c / "data")
    z.write_bytes(z.read_bytes()[: z.stat().st_size // 2])
    return train("hapt6")


@case("corrupt_zip", "HAPT_Data_Set_RawData_and_labels.zip is not a readable zip")
def _(c, a):
    write_hapt(c / "data").write_bytes(b"PK\x03\x04 this is not a zip file " * 20)
    return train("hapt6")


@case("non_numeric_row", "RawData/acc_exp01_user01.txt line 5: found non-numeric value 'abc'")
def _(c, a):
    write_hapt(c / "data", hapt_with("RawData/acc_exp01_user01.txt", 5, "0.1 abc 0.3"))
    return train("hapt6")


@case("val_share_leaves_a_class_untrained", "--val-fraction 0.2: every choice of validation subjects leaves class",
      "with no training window", "--val-subjects")
def _(c, a):
    write_hapt(c / "data")  # each of the 3 training users alone holds two classes
    return train("hapt6")


@case("val_subject_not_in_the_data", "--val-subjects: no training subject p9 in the data; training subjects: ")
def _(c, a):
    return train("uci_har", "--data-dir", str(copy_data(a.uci, c)), "--val-subjects", "1,p9")


@case("nan_in_signals", "RawData/acc_exp01_user01.txt: 2 NaN/Inf values", "--nan-policy drop")
def _(c, a):
    write_hapt(c / "data", hapt_with("RawData/acc_exp01_user01.txt", 50, "nan 0.0 inf"))
    return train("hapt6")


@case("label_id_not_in_label_file", "RawData/labels.txt line 2: activity id 13 is not in activity_labels.txt")
def _(c, a):
    write_hapt(c / "data", hapt_with("RawData/labels.txt", 2, f"1 1 13 301 {N_SAMPLES}"))
    return train("hapt6")


@case("segment_beyond_recording_end", "RawData/labels.txt line 2 (exp 1, user 1): segment 301..700 ends beyond",
      "600 samples")
def _(c, a):
    write_hapt(c / "data", hapt_with("RawData/labels.txt", 2, "1 1 4 301 700"))
    return train("hapt6")


@case("windows_shorter_than_window_length", "body_acc_x_train.txt line 3: found 100 values, expected 128",
      "windows shorter than the window length")
def _(c, a):
    f = copy_data(a.uci, c) / UCI / "train/Inertial Signals/body_acc_x_train.txt"
    f.write_text(edit_line(f.read_text(), 3, " ".join(f.read_text().splitlines()[2].split()[:100])))
    return train("uci_har")


@case("empty_split_after_validation_holdout", "--val-fraction 0.2", "hold 1 subject(s)")
def _(c, a):
    f = copy_data(a.uci, c) / UCI / "train/subject_train.txt"
    f.write_text("1\n" * len(f.read_text().splitlines()))
    return train("uci_har")


# ---- names and values ---------------------------------------------------------------------------
@case("unknown_dataset", "--dataset", "'hapt7'")
def _(c, a):
    return train("hapt7")


@case("unknown_mode", "--mode", "'grid'")
def _(c, a):
    return train("uci_har", "--mode", "grid")


@case("unknown_encoding", "--encodings: unknown encoding 'xyz'")
def _(c, a):
    return train("uci_har", "--encodings", "gasf,xyz")


@case("unknown_encoder_before_the_data_loads", "--encoder: unknown timm model 'vit_nonexistent_42'")
def _(c, a):  # the data folder is missing too: the encoder name is checked first
    return train("uci_har", "--encoder", "vit_nonexistent_42", "--data-dir", "nowhere")


@case("negative_lr", "--lr: got -0.1, expected > 0")
def _(c, a):
    return train("uci_har", "--lr", "-0.1")


@case("batch_size_0", "--batch-size: got 0, expected >= 1")
def _(c, a):
    return train("uci_har", "--batch-size", "0")


@case("val_fraction_1", "--val-fraction: got 1.0, expected a value in (0, 1)")
def _(c, a):
    return train("uci_har", "--val-fraction", "1.0")


# ---- checkpoints --------------------------------------------------------------------------------
@case("evaluate_with_another_class_count", "--dataset uci_har: its classes", "JUMPING", "differ from the model's")
def _(c, a):
    copy_run(a, c)
    return ["evaluate", "runs/r", "--dataset", "uci_har", "--data-dir", str(a.uci7), "--device", "cpu"]


@case("evaluate_weights_of_another_architecture", "tampered.pt: weights do not fit this model")
def _(c, a):
    ckpt = torch.load(a.run / "best.pt", weights_only=True)
    ckpt["config"]["embed_dim"] = 48  # the weights are for width 32
    torch.save(ckpt, c / "tampered.pt")
    return ["evaluate", "tampered.pt", "--data-dir", str(a.uci), "--device", "cpu"]


@case("resume_with_another_encoder", "--resume:", "encoder: 'vit_tiny_patch16_224' -> 'vit_small_patch16_224'",
      "--init-from")
def _(c, a):
    copy_run(a, c)
    return train("uci_har", "--resume", "--encoder", "vit_small_patch16_224")


@case("resume_with_another_mode", "--resume:", "mode: 'stack' -> 'sensor'")
def _(c, a):
    copy_run(a, c)
    return train("uci_har", "--resume", "--mode", "sensor")


@case("resume_with_other_classes", "--resume:", "trained on classes", "JUMPING")
def _(c, a):
    copy_run(a, c)
    return train("uci_har", "--resume", "--data-dir", str(a.uci7))


@case("init_from_another_encoder", "--init-from runs/r/best.pt: the encoder differs (embed_dim: 32 -> 48)")
def _(c, a):
    copy_run(a, c)
    return train("uci_har", "--data-dir", str(a.uci), "--run-name", "r2", "--init-from", "runs/r/best.pt",
                 "--embed-dim", "48")


@case("evaluate_a_text_file", "notes.txt is not a readable harvit checkpoint")
def _(c, a):
    (c / "notes.txt").write_text("these are not weights\n")
    return ["evaluate", "notes.txt"]


@case("evaluate_random_bytes", "random.pt is not a readable harvit checkpoint")
def _(c, a):
    (c / "random.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    return ["evaluate", "random.pt"]


@case("resume_from_a_torn_latest_pt", "runs/r/latest.pt is not a readable harvit checkpoint")
def _(c, a):
    latest = copy_run(a, c) / "latest.pt"
    latest.write_bytes(latest.read_bytes()[:5000])
    return train("uci_har", "--data-dir", str(a.uci), "--resume")


class _Code:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@case("evaluate_a_checkpoint_carrying_code", "evil.pt is not a readable harvit checkpoint",
      "unsupported GLOBAL posix.mkdir")
def _(c, a):  # unpickling would create the folder code-ran/: the test checks it does not exist
    ckpt = torch.load(a.run / "best.pt", weights_only=True)
    ckpt["model"] = _Code(str(c / "code-ran"))
    torch.save(ckpt, c / "evil.pt")
    return ["evaluate", "evil.pt"]


# ---- config file and output folder --------------------------------------------------------------
@case("config_file_missing", "config file nope.json not found")
def _(c, a):
    return train("uci_har", "--config", "nope.json")


@case("config_file_not_json", "config file bad.json is not readable JSON")
def _(c, a):
    (c / "bad.json").write_text('{"lr": 0.1,')
    return train("uci_har", "--config", "bad.json")


@case("config_file_unknown_setting", "unknown.json: unknown setting(s) lrr")
def _(c, a):
    (c / "unknown.json").write_text('{"lrr": 0.1}')
    return train("uci_har", "--config", "unknown.json")


@case("config_file_wrong_type", "type.json: setting lr is 'fast'; expected float")
def _(c, a):
    (c / "type.json").write_text('{"lr": "fast"}')
    return train("uci_har", "--config", "type.json")


@case("output_dir_is_a_file", "--output-dir: cannot create the run folder out.txt/r")
def _(c, a):
    (c / "out.txt").write_text("keep me\n")
    return train("uci_har", "--data-dir", str(a.uci), "--output-dir", "out.txt")


@case("output_dir_under_a_file", "--output-dir: cannot create the run folder out.txt/deeper/r")
def _(c, a):
    (c / "out.txt").write_text("keep me\n")
    return train("uci_har", "--data-dir", str(a.uci), "--output-dir", "out.txt/deeper")


# ---- flags that let a run go on -----------------------------------------------------------------
@case("nan_policy_drop_goes_on", code=0)
def _(c, a):
    write_hapt(c / "data", hapt_with("RawData/acc_exp01_user01.txt", 50, "nan 0.0 inf"))
    # each training user alone holds two classes: validation is named (a drawn share would be refused)
    return train("hapt6", "--nan-policy", "drop", "--no-tensorboard", "--val-subjects", "5")


@case("init_from_on_purpose_with_other_classes", code=0)
def _(c, a):
    copy_run(a, c)
    return train("uci_har", "--data-dir", str(a.uci7), "--run-name", "stage2", "--init-from", "runs/r/best.pt",
                 "--hidden-dims", "8")


# ---------------------------------------------------------------------------------------------
# Running the cases
# ---------------------------------------------------------------------------------------------
def snapshot(folder: Path) -> dict[str, str]:
    """SHA-256 of every file below ``folder`` (the prepared-data cache aside)."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "cache" not in p.relative_to(folder).parts}


def run_case(name: str, folder: Path, a: Assets) -> dict:
    folder.mkdir(parents=True)
    argv = CASES[name].setup(folder, a)
    before = snapshot(folder)
    env = {**os.environ, "HARVIT_DATA_DIR": str(folder / "data"), "HARVIT_CACHE_DIR": str(folder / "cache"),
           "HARVIT_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "harvit", *argv], env=env, cwd=folder, capture_output=True,
                          text=True, timeout=400)
    return {"proc": proc, "before": before, "after": snapshot(folder), "folder": folder}


@pytest.fixture(scope="module")
def results(request, tmp_path_factory, assets) -> dict[str, dict]:
    """Run every selected case, two processes at a time."""
    me = sys.modules[__name__]
    names = [it.callspec.params["name"] for it in request.session.items
             if getattr(it, "module", None) is me and hasattr(it, "callspec") and "name" in it.callspec.params]
    root = tmp_path_factory.mktemp("cli-cases")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {n: pool.submit(run_case, n, root / n, assets) for n in dict.fromkeys(names)}
        return {n: f.result() for n, f in futures.items()}


ERRORS = [n for n, c in CASES.items() if c.code == 2]
GOES_ON = [n for n, c in CASES.items() if c.code == 0]


@pytest.mark.parametrize("name", ERRORS)
def test_bad_input_is_one_clear_line_and_exit_2(name, results):
    r = results[name]
    proc = r["proc"]
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), proc.stderr
    line = lines[0]
    assert line.startswith("harvit: error: "), line
    for part in CASES[name].expect:
        assert part in line, f"{part!r} not in {line!r}"
    assert "weights_only" not in line  # never pass on torch's advice to load without it
    changed = {k for k, v in r["before"].items() if r["after"].get(k) != v}
    assert changed == set(), f"files changed or lost: {sorted(changed)}"
    assert not (r["folder"] / "code-ran").exists()  # no code from a checkpoint ever runs


@pytest.mark.parametrize("name", GOES_ON)
def test_flag_lets_the_run_go_on(name, results):
    r = results[name]
    proc = r["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    out = json.loads(next(r["folder"].glob("runs/*/training_results.json")).read_text())
    assert out["epochs_run"] == 1
    if name == "nan_policy_drop_goes_on":
        assert "NaN/Inf values (drop)" in proc.stderr  # said aloud, then dropped
    else:
        assert "init-from:" in proc.stdout and "head tensors re-initialised" in proc.stdout
        assert out["classes"][-1] == "JUMPING"
    changed = {k for k, v in r["before"].items() if r["after"].get(k) != v}
    assert changed == set(), f"files changed or lost: {sorted(changed)}"
