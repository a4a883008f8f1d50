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
    assert preset == "vit-b8-frozen" and cfg.encoder == "vit_base_patch8_224" and cfg.pretrained
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
    from harvit.cli.flags import default_text

    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    dests = [a.dest for a in train._actions]
    defaults = Config()
    for f in dataclasses.fields(Config):
        assert dests.count(f.name) == 1, f.name
        action = next(a for a in train._actions if a.dest == f.name)
        assert action.help, f.name
        shown = default_text(action)  # the default, said once by the formatter; unset ones say nothing
        value = getattr(defaults, f.name)
        if value is None or value == "":
            assert shown is None or shown.startswith("unset; "), f.name
        else:
            assert shown and shown.split(";")[0] in (str(value), "on" if value is True else "off"), f.name


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
    from harvit.cli.flags import LEAD, LEAD_TITLE

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    sections = {g.title: {a.dest for a in g._group_actions} for g in train._action_groups}
    assert sections[LEAD_TITLE] == set(LEAD) == {"preset", "dataset"}  # where a newcomer starts, listed first
    for name in GROUPS:
        assert sections[f"{name} settings"] == {n for n, g in groups.items() if g == name} - set(LEAD)


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


def test_the_lists_of_settings_that_must_match_come_from_each_settings_tags():
    """ARCH_KEYS, RESUME_KEYS, PROFILE_KEYS and ENCODER_KEYS are derived from the tags a setting is declared
    with: a new setting tagged "arch" joins the architecture, the resume check and the profiler's flags."""
    from dataclasses import dataclass

    from harvit.config import ARCH_KEYS, ENCODER_KEYS, PROFILE_KEYS, RESUME_KEYS
    from harvit.config.fields import closure, setting, tagged

    @dataclass(frozen=True)
    class WithNew(Config):
        new_width: int = setting(4, "a new architecture setting", tags={"arch"})
        new_seed: int = setting(0, "a new seed a resumed run must share", tags={"resume"})
        new_note: str = setting("", "an untagged setting")

    assert "new_width" in tagged(WithNew, "arch") and "new_width" in tagged(WithNew, "resume")
    assert "new_width" in tagged(WithNew, "profile") and "new_width" not in tagged(WithNew, "encoder")
    assert "new_seed" in tagged(WithNew, "resume") and "new_seed" not in tagged(WithNew, "arch")
    assert all("new_note" not in tagged(WithNew, t) for t in ("encoder", "arch", "resume", "profile"))
    assert tagged(WithNew, "arch")[:len(ARCH_KEYS)] == ARCH_KEYS  # the config's own, then the new one
    with pytest.raises(ValueError, match="shape"):
        setting(1, "a typo in a tag", tags={"shape"})
    with pytest.raises(ValueError, match="shape"):
        tagged(Config, "shape")
    assert closure({"encoder"}) == {"encoder", "arch", "resume", "profile"}
    # every tagged setting is in its lists, and the lists nest as their contracts say
    for f in dataclasses.fields(Config):
        for tag, keys in (("encoder", ENCODER_KEYS), ("arch", ARCH_KEYS), ("resume", RESUME_KEYS),
                          ("profile", PROFILE_KEYS)):
            assert (tag in f.metadata["tags"]) == (f.name in keys), (f.name, tag)
    assert set(ENCODER_KEYS) <= set(ARCH_KEYS) <= set(RESUME_KEYS) and set(ARCH_KEYS) <= set(PROFILE_KEYS)
    assert {"dataset", "mtf_bins", "hidden_dims", "rocket_features"} <= set(ARCH_KEYS)
    assert {"seed", "train_stride", "train_overlap", "ema_decay", "augment"} <= set(RESUME_KEYS) - set(ARCH_KEYS)
    assert {"batch_size", "device", "preset"} <= set(PROFILE_KEYS) - set(RESUME_KEYS)


def test_the_former_preset_name_is_an_alias(capsys):
    """`pix2seq` was the frozen ViT-B/8 preset's name: it still runs that preset, reported by its name."""
    from harvit.config import GPU_PRESET, PRESET_ALIASES, preset_name

    assert PRESET_ALIASES["pix2seq"] == GPU_PRESET == "vit-b8-frozen" and "pix2seq" not in PRESETS
    new, _ = resolve({"preset": "vit-b8-frozen"}, False, windowing)
    old, name = resolve({"preset": "pix2seq"}, False, windowing)
    assert name == "vit-b8-frozen" and old == new and old.preset == "vit-b8-frozen"
    assert (old.encoder, old.img_size, old.mode, old.freeze_encoder, old.hidden_dims, old.window_stats) == (
        "vit_base_patch8_224", 224, "flatten", True, "512", False)
    assert Config(preset="pix2seq").validate().preset == "pix2seq"  # an older run's config.json still loads
    assert preset_name("pix2seq") == "vit-b8-frozen"
    with pytest.raises(HarvitError, match="--preset: unknown preset 'gpu'"):
        Config(preset="gpu").validate()
    assert main(["train", "--preset", "pix2seq", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["preset"] == "vit-b8-frozen"
    assert main(["train", "--preset", "nope", "--print-config"]) == 2


def _helps():
    """Every command's parser (``data info`` included) and its ``--help`` text."""
    from harvit.cli.flags import HelpFormatter

    sub = build_parser()._subparsers._group_actions[0]
    parsers = {n: p for n, p in sub.choices.items() if n != "data"}
    parsers["data info"] = sub.choices["data"]._subparsers._group_actions[0].choices["info"]
    for name, parser in parsers.items():
        yield name, parser, parser.format_help(), HelpFormatter(parser.prog, width=100)


def test_help_says_each_default_once_and_no_argparse_internals():
    from harvit.cli.flags import default_text

    for name, parser, text, formatter in _helps():
        assert "SUPPRESS" not in text and "(default: None)" not in text and "(default: )" not in text, name
        for action in parser._actions:
            if action.help and action.help != "==SUPPRESS==" and default_text(action):
                # the formatter adds the default only to a help text that does not give one itself
                assert "(default" not in action.help, (name, action.dest)
                assert formatter._expand_help(action).count("(default:") == 1, (name, action.dest)


def test_train_help_starts_with_the_preset_and_the_data_set():
    from harvit.config import PRESET_DESCRIPTIONS

    text = dict((n, t) for n, _, t, _ in _helps())["train"]
    sections = [line for line in text.splitlines() if line.endswith(":") and line[:1].isalpha()
                and line.rstrip(":").replace(" ", "").isalpha()]
    assert sections[0] == "preset and data set:" and sections[-1] == "own data settings:", sections
    first = text.index("preset and data set:")
    assert text.index("--preset NAME", first) < text.index("--dataset NAME|PATH", first) < text.index("options:")
    for preset in PRESET_DESCRIPTIONS:  # the new name, what it is, and the former name that still runs it
        assert f"  {preset}  " in text
    assert "pix2seq: the former name of vit-b8-frozen" in " ".join(text.split())
    assert len(text.splitlines()) < 357  # the help before the sections were grouped and the defaults said once


def test_cv_and_baseline_point_to_train_for_the_shared_settings_and_still_take_them():
    from harvit.cli.flags import explicit_settings

    helps = {n: t for n, _, t, _ in _helps()}
    for name in ("cv", "baseline"):
        assert "harvit train --help" in " ".join(helps[name].split()), name
        assert "--label-column" not in helps[name] and "--epochs" not in helps[name], name
        assert len(helps[name].splitlines()) < len(helps["train"].splitlines()) // 2, name
    assert "--epochs" in helps["train"] and "--label-column" in helps["data info"]
    ns = build_parser().parse_args(["cv", "--epochs", "3", "--label-column", "act", "--preset", "pix2seq"])
    assert explicit_settings(ns) == {"epochs": 3, "label_column": "act", "preset": "pix2seq"}
    ns = build_parser().parse_args(["baseline", "--label-column", "act", "--preset", "pix2seq"])
    assert ns.label_column == "act" and ns.preset == "pix2seq"
    with pytest.raises(HarvitError, match="report"):
        build_parser().parse_args(["cv", "--no-report"])  # cv_report.md is always written


def test_the_training_stride_is_resolved_in_one_place():
    """`train_stride` is read (0 or absent: the data set's own) and fitted to a data set's windowing only in
    harvit.config.groups; every other module asks it."""
    import re
    from pathlib import Path

    from harvit.config import training_stride

    assert training_stride({}) is None and training_stride({"train_stride": 0}) is None
    assert training_stride({"train_stride": 32}) == 32 == Config(train_stride=32).train_stride_or_none
    assert Config().train_stride_or_none is None

    def kind(k):
        return lambda name: k

    cfg, _ = resolve({"preset": "cpu", "dataset": "mine.csv"}, False, kind("table"))
    assert (cfg.train_stride, cfg.train_overlap) == (0, 1 - PRESETS["cpu"]["train_stride"] / 128)
    cfg, _ = resolve({"preset": "cpu", "dataset": "mine.csv", "train_overlap": 0.6}, False, kind("table"))
    assert (cfg.train_stride, cfg.train_overlap) == (0, 0.6)  # an explicit overlap is kept
    cfg, _ = resolve({"preset": "cpu", "dataset": "mine.csv", "overlap": 0.9}, False, kind("table"))
    assert cfg.train_overlap == 0.9  # never sparser than the test windows
    assert resolve({"preset": "cpu"}, False, kind("windows"))[0].train_stride == 0
    assert resolve({"preset": "cpu"}, False, kind("recordings"))[0].train_stride == PRESETS["cpu"]["train_stride"]
    src = Path(__file__).resolve().parents[1] / "src" / "harvit"
    readers = [p.relative_to(src).as_posix() for p in src.rglob("*.py")
               if re.search(r"train_stride\W{0,3}\s*or None", p.read_text(encoding="utf-8"))]
    assert readers == ["config/groups.py"], readers
