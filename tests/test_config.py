import dataclasses
import json

import pytest

from harvit.cli import build_parser, check_registered, main
from harvit.config import PRESETS, Config, resolve
from harvit.data import windowing
from harvit.utils.errors import HarvitError


def test_defaults_are_the_reference_design():
    c = Config()
    assert (c.encoder, c.img_size, c.mode, c.freeze_encoder) == ("vit_base_patch8_224", 224, "flatten", True)
    assert c.encoding_list == ["gasf", "gadf", "mtf"] and c.hidden_dim_list == [512]
    assert (c.lr, c.weight_decay, c.warmup_epochs, c.min_lr, c.label_smoothing) == (1e-3, 1e-4, 2, 1e-6, 0.1)
    assert (c.grad_clip, c.early_stopping_patience, c.val_fraction, c.dropout) == (1.0, 7, 0.2, 0.1)


@pytest.mark.parametrize(
    "field, value, flag",
    [("lr", -1.0, "--lr"), ("batch_size", 0, "--batch-size"), ("val_fraction", 1.0, "--val-fraction"),
     ("mode", "diagonal", "--mode"), ("encodings", "gasf,gasf", "--encodings"), ("dataset", "", "--dataset"),
     ("hidden_dims", "12,x", "--hidden-dims"), ("epochs", 0, "--epochs"), ("run_name", "../x", "--run-name")],
)
def test_bad_values_name_the_flag(field, value, flag):
    with pytest.raises(HarvitError, match=flag):
        Config(**{field: value}).validate()


@pytest.mark.parametrize("field, value, flag", [("encodings", "gasf,wavelet", "--encodings"),
                                               ("dataset", "mnist", "--dataset")])
def test_unregistered_names_name_the_flag(field, value, flag):
    """Names of data sets and encodings live in their registries, above the config: the CLI checks them."""
    Config(**{field: value}).validate()  # well-formed: the config knows no names
    with pytest.raises(HarvitError, match=flag):
        check_registered(Config(**{field: value}))
    assert main(["train", f"--{field}", value, "--print-config"]) == 2


def test_precedence_defaults_preset_flags():
    cfg, preset = resolve({}, False, windowing)
    assert preset == "cpu" and cfg.img_size == PRESETS["cpu"]["img_size"]
    cfg, preset = resolve({}, True, windowing)
    assert preset == "pix2seq" and cfg.encoder == "vit_base_patch8_224" and cfg.pretrained
    cfg, _ = resolve({"preset": "cpu", "img_size": 48}, True, windowing)
    assert cfg.img_size == 48 and cfg.mode == PRESETS["cpu"]["mode"]


def test_save_load_round_trip(tmp_path):
    c = Config(lr=3e-4, mode="sensor", data_dir="x")
    c.save(tmp_path / "config.json")
    assert Config.load(tmp_path / "config.json") == c


def test_unreadable_and_unknown_config(tmp_path):
    p = tmp_path / "config.json"
    p.write_text("{not json")
    with pytest.raises(HarvitError, match="not readable JSON"):
        Config.load(p)
    p.write_text(json.dumps({"lr": 1e-3, "learning_rate": 2}))
    with pytest.raises(HarvitError, match="learning_rate"):
        Config.load(p)
    with pytest.raises(HarvitError, match="not found"):
        Config.load(tmp_path / "missing.json")


def test_every_field_is_one_flag_with_help():
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    dests = [a.dest for a in train._actions]
    for f in dataclasses.fields(Config):
        assert dests.count(f.name) == 1, f.name
        action = next(a for a in train._actions if a.dest == f.name)
        assert action.help and "default" in action.help


def test_cpu_preset_windows_densely_only_where_raw_recordings_exist():
    assert resolve({"preset": "cpu", "dataset": "hapt6"}, False, windowing)[0].train_stride == 32
    assert resolve({"preset": "cpu", "dataset": "uci_har"}, False, windowing)[0].train_stride == 0
    explicit = resolve({"preset": "cpu", "dataset": "uci_har", "train_stride": 16}, False, windowing)[0]
    assert explicit.train_stride == 16  # an explicit flag is kept (and refused when the data loads)


def test_settings_are_grouped_by_job_and_help_lists_them_by_group():
    from harvit.config import GROUPS

    groups = {f.name: f.metadata["group"] for f in dataclasses.fields(Config)}
    assert set(groups.values()) == set(GROUPS)
    assert [groups[n] for n in ("dataset", "rate", "encodings", "encoder", "lr", "seed")] == [
        "data", "own data", "images", "model", "optimisation", "run"]
    for name, group in GROUPS.items():  # every group's fields are the config's, in the group's order
        own = [f.name for f in dataclasses.fields(group)]
        assert [n for n, g in groups.items() if g == name] == own
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    sections = {g.title: {a.dest for a in g._group_actions} for g in train._action_groups}
    for name in GROUPS:
        assert sections[f"{name} settings"] == {n for n, g in groups.items() if g == name}


def test_own_data_settings_are_declared_and_checked_once():
    """The data layer's OwnOptions is the config's own-data group: same fields, defaults, help and checks."""
    from harvit.config import OWN_DATA_FIELDS, OwnDataSettings
    from harvit.data.options import OwnOptions

    assert tuple(f.name for f in dataclasses.fields(OwnOptions)) == OWN_DATA_FIELDS
    assert issubclass(OwnOptions, OwnDataSettings) and issubclass(Config, OwnDataSettings)
    assert not issubclass(Config, OwnOptions)  # a Config is not passed where loading options are meant
    assert OwnOptions.from_settings(Config(window_s=3.0).to_dict()) == OwnOptions(window_s=3.0)
    for name, bad in (("overlap", 1.0), ("time_unit", "days"), ("columns", "a,a"), ("channels", ","),
                      ("test_fraction", 0.0)):
        with pytest.raises(HarvitError) as from_config:
            Config(**{name: bad}).validate()
        with pytest.raises(HarvitError) as from_options:
            OwnOptions(**{name: bad}).validate()
        assert str(from_config.value) == str(from_options.value)
        assert str(from_config.value).startswith(f"--{name.replace('_', '-')}")


def test_a_config_is_a_value():
    cfg = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0  # type: ignore[misc]
    assert dataclasses.replace(cfg, lr=0.5).lr == 0.5 and cfg.lr == Config.lr
