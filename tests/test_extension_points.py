"""Issue 21: each extension point is one registration in one module, and everything else reads the registry.

A toy data set, a toy encoding, a toy metric and a toy baseline are each added by ONE new module
(written here, imported, and nothing else edited); they reach the CLI's help and checks, ``harvit data
info``, a training run's results, ``harvit evaluate``, ``harvit baseline`` and report.md.
"""

from __future__ import annotations

import ast
import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers_runs import tiny_config

from harvit.cli import build_parser, main
from harvit.config import PRESETS, Config
from harvit.data import DATASETS, dataset_names
from harvit.data.catalog import DatasetSpec
from harvit.evaluation.baseline_registry import BASELINES
from harvit.evaluation.metrics import METRICS
from harvit.imaging.encodings import ENCODINGS
from harvit.utils.errors import HarvitError

SRC = Path(__file__).resolve().parents[1] / "src" / "harvit"

TOY_DATASET = '''
"""A toy data set: one module, one registration."""
from helpers_runs import synthetic_dataset

from harvit.data.catalog import register_dataset


@register_dataset("toy walks: synthetic windows of 4 activities", n_classes=4, fixed_windows=True)
def toy_walks(data_dir, nan_policy="error", params=None, use_cache=True):
    return synthetic_dataset(n_train=120, n_test=48)
'''

TOY_ENCODING = '''
"""A toy encoding: one module, one registration."""
from harvit.imaging.encodings import register_encoding


@register_encoding("toy: the outer product x_i * x_j")
def toy_outer(x):
    return x.unsqueeze(-1) * x.unsqueeze(-2)
'''


TOY_METRIC = '''
"""A toy metric: one module, one registration."""
import numpy as np

from harvit.evaluation.metrics import register_metric


@register_metric("toy error rate", higher_is_better=False)
def toy_error_rate(y_true, y_pred, labels):
    return float(np.mean(y_true != y_pred)) if len(y_true) else 0.0
'''

TOY_BASELINE = '''
"""A toy baseline: one module, one registration."""
import numpy as np

from harvit.evaluation.baseline_registry import Fitted, register_baseline


@register_baseline("toy majority class", reads="statistics", tier="fast")
def toy_majority(data):
    top = int(np.bincount(data.y_train_val() if data.refit else data.ys["train"]).argmax())
    first = int(np.bincount(data.ys["train"]).argmax())
    return Fitted(np.full(len(data.ys["val"]), first), np.full(len(data.ys["test"]), top))
'''
TOYS = {"toy_dataset_plugin": TOY_DATASET, "toy_encoding_plugin": TOY_ENCODING, "toy_metric_plugin": TOY_METRIC,
        "toy_baseline_plugin": TOY_BASELINE}


@pytest.fixture(scope="module")
def plugins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Write the two toy modules, import them (registering), and unregister them afterwards."""
    folder = tmp_path_factory.mktemp("plugins")
    for name, text in TOYS.items():
        (folder / f"{name}.py").write_text(text)
    sys.path.insert(0, str(folder))
    try:
        for name in TOYS:
            importlib.import_module(name)
        yield
    finally:
        DATASETS.remove("toy_walks")
        ENCODINGS.remove("toy_outer")
        METRICS.remove("toy_error_rate")
        BASELINES.remove("toy_majority")
        for name in TOYS:
            sys.modules.pop(name, None)
        sys.path.remove(str(folder))


def _help(*command: str) -> str:
    parser = build_parser()
    for name in command:
        parser = next(a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict)
                      ).choices[name]
    return parser.format_help()


def test_the_toys_reach_the_cli_help_and_its_checks(plugins: None) -> None:
    train_help = _help("train")
    assert "toy_walks" in train_help and "toy_outer" in train_help
    assert "toy_walks" in _help("data", "info")
    assert "toy_majority" in " ".join(_help("baseline").split())  # harvit baseline --models: the registered names
    assert main(["train", "--dataset", "toy_walks", "--encodings", "toy_outer,gasf", "--print-config"]) == 0
    assert main(["train", "--dataset", "toy_walks", "--encodings", "toy_inner", "--print-config"]) == 2
    assert main(["train", "--dataset", "toy_runs", "--print-config"]) == 2


def test_a_fixed_window_data_set_drops_the_preset_stride(plugins: None, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--preset", "cpu", "--dataset", "toy_walks", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["train_stride"] == 0 and PRESETS["cpu"]["train_stride"] > 0


def test_the_toy_data_set_in_data_info(plugins: None, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", "info", "toy_walks"]) == 0
    out = capsys.readouterr().out
    assert "toy walks: synthetic windows of 4 activities" in out and "WALKING" in out and "LAYING" in out


def test_the_toys_train_and_evaluate(plugins: None, tmp_path: Path, capsys: pytest.CaptureFixture,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import harvit.evaluation.series_models as sm
    from harvit.reporting.report import create_training_report
    from harvit.training import train

    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sm, "MINIROCKET_FEATURES", 168)  # the fast tier at a toy size
    cfg = tiny_config(tmp_path, dataset="toy_walks", encodings="toy_outer,gasf", epochs=1, baseline_set="fast")
    results = train(cfg)  # loads the data set by name, images through both encodings
    assert results.dataset == "synthetic" and len(results.classes) == 4
    assert results.config.encodings == "toy_outer,gasf"
    # the toy metric in the run's results: test, and the selected epoch's validation scores
    wrong = np.mean(np.asarray(results.test_y_true) != np.asarray(results.test_y_pred))
    assert results.test["toy_error_rate"] == pytest.approx(wrong) == pytest.approx(1 - results.test["accuracy"])
    assert results.best_val["toy_error_rate"] is not None
    assert "toy_error_rate" in results.test_per_subject["subjects"][str(results.split["test"].subjects[0])]
    capsys.readouterr()
    assert main(["evaluate", str(cfg.run_dir), "--device", "cpu"]) == 0  # the run's data set, by its name
    out = capsys.readouterr().out
    assert "accuracy" in out and f"toy error rate     {wrong:.4f}" in out
    # harvit baseline: the toy baseline as a choice, the toy metric as a column
    assert main(["baseline", "--run", str(cfg.run_dir), "--models", "logreg,toy_majority", "--json",
                 str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    assert "toy majority class" in out and "test toy error rate" in out
    saved = json.loads((tmp_path / "b.json").read_text())
    assert set(saved["models"]) == {"logreg", "toy_majority"} and "test_toy_error_rate" in saved["models"]["logreg"]
    assert main(["baseline", "--run", str(cfg.run_dir), "--models", "nope"]) == 2
    # report.md: the toy baseline fitted (fast tier) and named, the toy metric in the summary and baseline tables
    text = create_training_report(cfg.run_dir).read_text()
    assert "test toy error rate" in text and "| toy majority class" in text
    assert "toy majority class" in text.split("## Baseline comparison")[1]


def test_a_name_is_registered_once() -> None:
    spec = DATASETS.get(dataset_names()[0])
    with pytest.raises(HarvitError, match="registered twice"):
        DATASETS.add(DatasetSpec(spec.name, "again", spec.load, spec.n_classes))
    with pytest.raises(HarvitError, match="--encodings: unknown encoding 'nope'"):
        ENCODINGS.get("nope")


def _string_constants(path: Path) -> set[str]:
    """Every string constant of a module (docstrings aside), and each part of a comma-separated one."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            found.add(node.value)
            found.update(p.strip() for p in node.value.split(",") if "," in node.value)
    return found


def test_each_builtin_name_is_written_in_one_module_at_most() -> None:
    """A built-in data set's, encoding's, metric's or baseline's name is its registered function's name; as a
    string it appears in at most one module of src/ (config.py's defaults and presets name some data sets and
    encodings; metrics.py its per-subject figures' keys; every other reader asks the registry)."""
    constants = {p: _string_constants(p) for p in SRC.rglob("*.py")}
    for name in [*dataset_names(), *ENCODINGS.names(), *METRICS.names(), *BASELINES.names()]:
        where = sorted(str(p.relative_to(SRC)) for p, found in constants.items() if name in found)
        assert len(where) <= 1, f"{name!r} is written in {where}"


def test_the_config_defaults_and_presets_name_registered_things() -> None:
    assert Config.dataset in DATASETS
    for encodings in [Config.encodings, *(p["encodings"] for p in PRESETS.values() if "encodings" in p)]:
        assert all(e in ENCODINGS for e in encodings.split(",")), encodings
