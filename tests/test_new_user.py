"""What a new user trips on (issue 15): each command as written, and what it must do.

The commands come from the reference design's documentation and from harvit's own README; training
runs are tiny (a 1-block ViT on 16 px images of small synthetic data in the UCI HAR layout).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import torch
from synth import write_uci_layout

from harvit.cli import build_parser, config_from_args, done_line, main

ROOT = Path(__file__).resolve().parents[1]
#: Appended to a README command: a tiny encoder on small synthetic data, on the CPU (later flags win).
TINY_FLAGS = ["--dataset", "uci_har", "--encoder", "vit_tiny_patch16_224", "--img-size", "16", "--patch-size", "8",
              "--embed-dim", "32", "--depth", "1", "--num-heads", "2", "--hidden-dims", "16", "--mode", "stack",
              "--encodings", "gasf", "--batch-size", "32", "--no-progress", "--no-tensorboard", "--device", "cpu",
              "--threads", "1", "--early-stopping-patience", "0", "--epochs", "1", "--warmup-epochs", "0"]


def _one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture()
def uci_folder(tmp_path, monkeypatch) -> Path:
    """A working folder holding small UCI HAR data (HARVIT_DATA_DIR), offline, one torch thread."""
    write_uci_layout(tmp_path / "data", n_train=60, n_test=24)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARVIT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HARVIT_OFFLINE", "1")
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield tmp_path
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(det)


# ---- the reference design's commands ----------------------------------------------------------------
@pytest.mark.parametrize("argv, widths", [
    (["--hidden-dims", "1024", "512", "256"], "1024,512,256"),  # the reference design's "best accuracy" command
    (["--hidden-dims", "1024,512,256"], "1024,512,256"),
    (["--hidden-dims", "1024,", "512"], "1024,512"),
    (["--hidden-dims", ""], ""),  # a linear head
    (["--hidden-dims", "1024", "512", "--epochs", "3"], "1024,512"),  # the widths end at the next flag
])
def test_hidden_dims_take_spaces_or_commas(argv, widths):
    cfg, _ = config_from_args(build_parser().parse_args(["train", "--preset", "cpu", *argv]))
    assert cfg.hidden_dims == widths
    assert cfg.hidden_dim_list == [int(w) for w in widths.split(",") if w]


def test_hidden_dims_with_spaces_through_the_cli(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--preset", "cpu", "--hidden-dims", "1024", "512", "256", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["hidden_dims"] == "1024,512,256"
    assert list(tmp_path.iterdir()) == []  # --print-config trains nothing and writes nothing


def test_visualize_module_has_the_reference_designs_functions():
    from harvit.reporting import plots, report
    from harvit.visualize import (
        create_training_report,
        generate_classification_report,
        plot_confusion_matrix,
        plot_training_history,
    )

    assert plot_training_history is plots.plot_training_history
    assert plot_confusion_matrix is plots.plot_confusion_matrix
    assert generate_classification_report is plots.generate_classification_report
    assert create_training_report is report.create_training_report


def readme_finetune_commands() -> list[list[str]]:
    """The ``harvit train`` lines of the two-stage fine-tuning block of docs/how-it-works.md, as argv lists."""
    text = (ROOT / "docs" / "how-it-works.md").read_text(encoding="utf-8")
    section = text.split("### Two-stage fine-tuning", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return [shlex.split(line)[1:] for line in block.splitlines() if line.startswith("harvit train")]


def test_readme_two_stage_finetuning_runs_as_written(uci_folder, capsys):
    stage1, stage2 = readme_finetune_commands()
    assert "--init-from" in stage2 and "--no-freeze-encoder" in stage2 and "--run-name" in stage2
    # stage 1 as written, on a tiny encoder; offline without weights, so --no-pretrained here
    assert main([*stage1, *TINY_FLAGS, "--no-pretrained"]) == 0
    out1 = capsys.readouterr().out
    run1 = uci_folder / "checkpoints" / "stage1"
    assert (run1 / "best.pt").is_file() and (run1 / "report.md").is_file()
    assert json.loads((run1 / "config.json").read_text())["freeze_encoder"] is True
    assert re.search(r"^done in \d+ s wall \(training \d+ s; report \d+ s, baseline included\)$", out1, re.M)
    assert out1.rstrip().splitlines()[-1].startswith("done in ")  # the last line: after the report

    # stage 2 into stage 1's own folder is refused, and the message says what to do
    same = [a if a != "stage2" else "stage1" for a in stage2]
    assert main([*same, *TINY_FLAGS]) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--init-from checkpoints/stage1" in err

    # stage 2 as written: --init-from takes the stage-1 run folder
    assert main([*stage2, *TINY_FLAGS]) == 0
    out2 = capsys.readouterr().out
    assert "init-from: " in out2 and f"from {Path('checkpoints/stage1/best.pt')}" in out2
    cfg2 = json.loads((uci_folder / "checkpoints" / "stage2" / "config.json").read_text())
    assert cfg2["freeze_encoder"] is False and cfg2["lr"] == 5e-5 and cfg2["init_from"] == "checkpoints/stage1"
    s1 = torch.load(run1 / "best.pt", weights_only=True)["model"]
    s2 = torch.load(uci_folder / "checkpoints" / "stage2" / "latest.pt", weights_only=True)["model"]
    enc = [k for k in s1 if k.startswith("net.encoder.") and s1[k].is_floating_point()]
    assert enc and any(not torch.equal(s1[k], s2[k]) for k in enc)  # the unfrozen encoder moved from stage 1


# ---- help and logs that say what will happen ------------------------------------------------------------
def test_help_shows_the_presets_values_beside_the_default(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    assert e.value.code == 0
    text = _one_line(capsys.readouterr().out)
    assert "(default: vit_base_patch8_224; cpu preset: vit_tiny_patch16_224)" in text
    assert "(default: 224; cpu preset: 24)" in text
    assert "(default: 20; cpu preset: 8)" in text
    assert "(default: on; cpu preset: off)" in text  # --freeze-encoder
    assert "(default: off; vit-b8-frozen preset: on)" in text  # --pretrained
    assert "--print-config" in text


def test_print_config_prints_the_resolved_settings_and_exits(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--preset", "cpu", "--epochs", "3", "--print-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert (cfg["preset"], cfg["img_size"], cfg["epochs"], cfg["train_stride"]) == ("cpu", 24, 3, 32)
    assert not (tmp_path / "checkpoints").exists()


def test_log_names_the_vit_that_runs_and_the_warmup_clamp(tmp_path, capsys):
    from helpers_runs import synthetic_dataset, tiny_config

    from harvit.training import train

    train(tiny_config(tmp_path, warmup_epochs=3, epochs=2), dataset=synthetic_dataset(80, 40))
    out = capsys.readouterr().out
    assert "model: ViT patch 8, width 32, depth 1, heads 2 (timm vit_tiny_patch16_224 overridden) | " in out
    assert "model: vit_tiny_patch16_224" not in out
    assert re.search(r"warmup: --warmup-epochs 3 is not shorter than --epochs 2; clamped to \d+ of the \d+ steps",
                     out)


def test_a_plain_timm_name_when_nothing_is_overridden(tmp_path):
    from harvit.config import Config
    from harvit.models.encoder import create_encoder, describe_encoder

    cfg = Config(encoder="vit_tiny_patch16_224", img_size=32)
    assert describe_encoder(create_encoder(cfg, 1), cfg) == "vit_tiny_patch16_224"


def test_no_clamp_note_when_the_warmup_fits():
    from harvit.config import Config
    from harvit.training.optim import warmup_clamp_note

    assert warmup_clamp_note(Config(epochs=3, warmup_epochs=2), 10) is None
    assert "clamped to 19 of the 20 steps" in warmup_clamp_note(Config(epochs=2, warmup_epochs=3), 10)


@pytest.mark.parametrize("argv, expect", [
    (["train", "--hidden-dimz", "8"], "harvit: error: unrecognized arguments: --hidden-dimz 8 (see --help)"),
    (["train", "--epochs", "x"], "harvit: error: train: argument --epochs: invalid int value: 'x' (see --help)"),
    (["trian"], "harvit: error: argument COMMAND: invalid choice: 'trian'"),
])
def test_error_prefix_is_said_once(argv, expect, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(expect) and err.count("harvit") == 1 and err.count("\n") == 1, err


def test_profile_help_lists_no_training_only_flags(capsys):
    with pytest.raises(SystemExit):
        main(["profile", "--help"])
    text = capsys.readouterr().out
    for flag in ("--resume", "--run-name", "--epochs", "--output-dir", "--init-from", "--augment", "--lr",
                 "--early-stopping-patience", "--pretrained", "--data-dir", "--tensorboard"):
        assert not re.search(rf"{flag}\b", text), flag
    for flag in ("--encoder", "--img-size", "--batch-size", "--preset", "--hidden-dims", "--device"):
        assert flag in text, flag
    batch = _one_line(text.split("--batch-sizes BATCH_SIZES", 2)[-1])
    assert batch.startswith("comma-separated batch sizes")


def test_done_line_counts_report_and_baseline():
    line = done_line(152.4, 73.2, 34.0)
    assert line == "done in 152 s wall (training 73 s; report 34 s, baseline included)"
    assert done_line(80.0, 70.0, None) == "done in 80 s wall (training 70 s)"
