"""``harvit data info`` and ``harvit baseline``: the commands that read a data set from settings."""

from __future__ import annotations

import argparse
from pathlib import Path

from harvit.cli.flags import (
    DATA_DIR_HELP,
    Parser,
    Registered,
    add_config_flags,
    explicit_settings,
    resolve_checked,
)
from harvit.config import OWN_DATA_FIELDS, PRESET_ALIASES, PRESETS, Config
from harvit.utils.errors import HarvitError


def add_data(sub: argparse._SubParsersAction) -> None:
    """``harvit data``'s parser."""
    d = sub.add_parser("data", help="data set tools: `data info` describes a data set (windows, classes, subjects)")
    dsub = d.add_subparsers(dest="data_command", metavar="ACTION", parser_class=Parser)
    di = dsub.add_parser("info", help="windows per split and class, subjects, channels, rate")
    di_dataset = di.add_argument("dataset", help="a built-in data set (%(registered)s) or a path to your own data "
                                 "(table, .npz, .ts)")
    di_dataset.registered = Registered("datasets")  # type: ignore[attr-defined]
    di.add_argument("--data-dir", default=None, metavar="DIR", help=DATA_DIR_HELP)
    di.add_argument("--config", default=None, metavar="FILE",
                    help="read the own-data settings from a run's config.json")
    add_config_flags(di, OWN_DATA_FIELDS + ("nan_policy", "train_stride"))


def cmd_data(ns: argparse.Namespace) -> int:
    """``harvit data info DATASET``: the data set read with the settings of ``--config`` and the flags."""
    if ns.data_command != "info":
        raise HarvitError("harvit data: expected an action: info")

    from harvit.data.registry import describe, format_info, load_run_dataset

    settings = Config.load(ns.config).to_dict() if ns.config else {}
    settings.update(explicit_settings(ns))
    Config.from_dict({k: v for k, v in settings.items() if k != "dataset"}, source="settings")  # type checks
    print(format_info(load_run_dataset({**settings, "dataset": ns.dataset}, data_dir=ns.data_dir),
                      describe(ns.dataset)))
    return 0


def add_baseline(sub: argparse._SubParsersAction) -> None:
    """``harvit baseline``'s parser."""
    b = sub.add_parser("baseline", help="logistic regression and boosted trees on window statistics; MiniRocket, "
                                            "MultiRocket-Hydra and QUANT on the raw windows (cached)",
                       description="Fit the baselines on the windows a run would use: the same settings as "
                                   "`harvit train` (a preset, chosen by device without --preset, or a run "
                                   "folder's config.json), then the flags given here.",
                       epilog="Your own data (--dataset PATH) is read with the own-data settings of `harvit "
                              "train` (all but --train-overlap), flags here too; `harvit train --help` lists them "
                              "under 'own data settings'.")
    b.add_argument("--run", default=None, metavar="RUN",
                   help="follow this run folder's config.json (data set, windows, validation subjects)")
    b.add_argument("--preset", choices=(*PRESETS, *PRESET_ALIASES), default=None, metavar="NAME",
                   help=f"follow this preset's settings: {', '.join(PRESETS)} (default: by device, as harvit train)")
    b.add_argument("--dataset", default=None, metavar="NAME|PATH",
                   help=f"a built-in data set or a path to your own (default: {Config.dataset}, or the run's)")
    b.add_argument("--data-dir", default=None, metavar="DIR", help=DATA_DIR_HELP)
    b.add_argument("--seed", type=int, default=None, metavar="N",
                   help="seed of the validation-subject hold-out (default: 42, or the run's)")
    b.add_argument("--val-fraction", type=float, default=None, metavar="X",
                   help="fraction of training subjects held out (default: 0.2, or the run's)")
    b.add_argument("--train-stride", type=int, default=None, metavar="N",
                   help="step between training-window starts in samples, 0: the data set's own "
                        "(default: the preset's or the run's)")
    b.add_argument("--json", default=None, metavar="FILE", help="write the results as JSON here")
    own = [f for f in OWN_DATA_FIELDS if f != "train_overlap"]
    add_config_flags(b, own, shown=())  # listed by harvit train --help (the epilog says so)
    b.add_argument("--no-minirocket", action="store_true",
                   help="skip the time-series classifiers (MiniRocket, MultiRocket-Hydra, QUANT): the two "
                        "statistics models only")
    b.add_argument("--no-refit", action="store_true",
                   help="test each model as fitted on the training windows (default: refitted on training + "
                        "validation windows after scoring validation, as the model)")
    add_config_flags(b, ["baseline_set"])
    b_models = b.add_argument("--models", default=None, metavar="KEYS",
                              help="comma-separated baselines to fit (%(registered)s; default: --baseline-set's)")
    b_models.registered = Registered("baselines")  # type: ignore[attr-defined]


def baseline_settings(ns: argparse.Namespace) -> tuple[Config, str]:
    """The settings ``harvit baseline`` follows, and where they came from: a run folder's config.json
    (``--run``), else defaults < preset (``--preset``, else by device, as ``harvit train``); then its flags."""
    explicit = {k: v for k, v in (("dataset", ns.dataset), ("data_dir", ns.data_dir), ("split_seed", ns.seed),
                                  ("val_fraction", ns.val_fraction), ("train_stride", ns.train_stride))
                if v is not None}
    explicit.update({k: v for k, v in vars(ns).items() if k in (*OWN_DATA_FIELDS, "baseline_set")})  # flags given
    if ns.run:
        if ns.preset:
            raise HarvitError("--run and --preset: give one (a run folder carries its own settings)")
        run = Path(ns.run)
        if not (run / "config.json").is_file():
            raise HarvitError(f"--run {run}: no config.json there; expected a run folder of harvit train")
        cfg = Config.from_dict({**Config.load(run / "config.json").to_dict(), **explicit}, source=str(run))
        return cfg.validate(), f"the settings of run {run}"
    cfg, preset = resolve_checked({**explicit, **({"preset": ns.preset} if ns.preset else {})})
    return cfg, f"the {preset} preset" + ("" if ns.preset else " (chosen by device; --preset or --run to change)")


def cmd_baseline(ns: argparse.Namespace) -> int:
    """``harvit baseline``: the baselines fitted on the windows the settings describe."""
    from harvit.data import load_run_dataset
    from harvit.evaluation.baseline import format_baseline, run_baseline
    from harvit.reporting.gather import keep_in_run

    cfg, source = baseline_settings(ns)
    print(f"settings: {source}", flush=True)
    result = run_baseline(cfg.dataset, windows=load_run_dataset(cfg), seed=cfg.val_seed,
                          val_fraction=cfg.val_fraction, json_path=ns.json, train_stride=cfg.train_stride_or_none,
                          val_subjects=cfg.val_subject_list, minirocket=not ns.no_minirocket,
                          refit=not ns.no_refit, baseline_set=cfg.baseline_set,
                          models=tuple(m.strip() for m in ns.models.split(",") if m.strip()) if ns.models else None)
    print(format_baseline(result))
    if ns.run and not ns.json:
        print(keep_in_run(Path(ns.run), result))
    return 0

