"""Command-line interface. Every training flag and its default come from :class:`harvit.config.Config`.

Subcommands: train, cv, data info, evaluate, report, baseline, profile, predict, export.
Bad input prints one line ``harvit: error: ...`` and exits with code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
from collections.abc import Sequence
from typing import Any, NoReturn, Union, get_args, get_origin, get_type_hints

from harvit.config import PRESETS, Config
from harvit.utils.errors import HarvitError
from harvit.utils.logging import setup_logging


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag on one line (exit 2), without the usage dump."""

    def error(self, message: str) -> NoReturn:
        raise HarvitError(f"{self.prog}: {message} (see --help)")


def _base_type(tp: Any) -> Any:
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return args[0]
    return tp


def add_config_flags(parser: argparse.ArgumentParser, groups: Sequence[str] | None = None) -> None:
    """One flag per Config field (``--snake-case``), default SUPPRESS so only given flags are seen."""
    hints = get_type_hints(Config)
    arg_groups: dict[str, argparse._ArgumentGroup] = {}
    defaults = Config()
    for f in dataclasses.fields(Config):
        group = f.metadata.get("group", "train")
        if groups is not None and group not in groups:
            continue
        g = arg_groups.setdefault(group, parser.add_argument_group(f"{group} settings"))
        tp = _base_type(hints[f.name])
        default = getattr(defaults, f.name)
        help_text = f"{f.metadata.get('help', '')} (default: {default})"
        flag = "--" + f.name.replace("_", "-")
        kw: dict[str, Any] = dict(dest=f.name, default=argparse.SUPPRESS, help=help_text)
        if tp is bool:
            g.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        else:
            if f.metadata.get("choices"):
                kw["choices"] = f.metadata["choices"]
            if f.name == "preset":
                kw["choices"] = tuple(PRESETS)
            g.add_argument(flag, type=tp, metavar=f.name.upper() if tp is not str else None, **kw)


def build_parser() -> argparse.ArgumentParser:
    data_dir_help = "data folder (default: $HARVIT_DATA_DIR, then ~/.cache/harvit/data)"
    p = _Parser(prog="harvit", description="Human Activity Recognition with ViTs on signal images.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    t = sub.add_parser("train", help="train a model (flags: every setting; --preset pix2seq or cpu)")
    t.add_argument("--config", help="read settings from a config.json (flags override it)")
    add_config_flags(t)

    cv = sub.add_parser("cv", help="cross-validation by subject: one run per fold of the training subjects")
    cv.add_argument("--folds", default="5", help="number of folds K >= 2, or loso (one fold per training subject)")
    cv.add_argument("--config", help="read settings from a config.json (flags override it)")
    cv.add_argument("--no-baselines", action="store_true", help="do not fit the baselines on the folds")
    cv.add_argument("--no-minirocket", action="store_true", help="baselines without MiniRocket (faster)")
    add_config_flags(cv)

    d = sub.add_parser("data", help="dataset tools")
    dsub = d.add_subparsers(dest="data_command", metavar="ACTION", parser_class=_Parser)
    di = dsub.add_parser("info", help="windows per split and class, subjects, channels, rate")
    di.add_argument("dataset", help="hapt6, hapt12 or uci_har")
    di.add_argument("--data-dir", default=None, help=data_dir_help)

    e = sub.add_parser("evaluate", help="metrics of a trained run on a split")
    e.add_argument("target", nargs="?", default=None, help="run folder or checkpoint file")
    e.add_argument("--ensemble", nargs="+", default=None, metavar="RUN",
                   help="evaluate the ensemble of these runs (a cv parent folder: its fold runs); the mean of "
                        "their window log-probabilities")
    e.add_argument("--split", choices=("test", "val"), default="test",
                   help="test subjects, or the run's validation subjects")
    e.add_argument("--dataset", default=None, help="evaluate on another dataset with the same classes")
    e.add_argument("--data-dir", default=None, help=data_dir_help)
    e.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to run")
    e.add_argument("--json", default=None, help="write the metrics here (default: RUN/evaluation_<split>.json)")

    r = sub.add_parser("report", help="plots and report.md of a run folder")
    r.add_argument("run_dir", help="run folder (writes plots/ and report.md there)")

    b = sub.add_parser("baseline", help="logistic regression and boosted trees on window statistics, MiniRocket on "
                                        "the raw windows (cached)")
    b.add_argument("--dataset", default="hapt6", help="dataset name")
    b.add_argument("--data-dir", default=None, help=data_dir_help)
    b.add_argument("--seed", type=int, default=42, help="seed of the validation-subject hold-out")
    b.add_argument("--val-fraction", type=float, default=0.2,
                   help="fraction of training subjects held out")
    b.add_argument("--train-stride", type=int, default=None,
                   help="step between training-window starts in samples (default: the data set's own)")
    b.add_argument("--json", default=None, help="write the results as JSON here")
    b.add_argument("--no-minirocket", action="store_true", help="skip MiniRocket (minutes on a CPU)")

    pr = sub.add_parser("profile", help="time encoding, forward and backward; batch-size and AMP sweeps")
    pr.add_argument("--out", default="profile.json", help="write the profile as JSON here")
    pr.add_argument("--batch-sizes", default="8,16,32,64,128,256")
    pr.add_argument("--trace", default=None, help="folder for a torch.profiler trace (TensorBoard)")
    pr.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    add_config_flags(pr)

    pd = sub.add_parser("predict", help="predict activities on raw recordings (acc + gyro files)")
    pd.add_argument("checkpoint", nargs="?", default=None, help="run folder or checkpoint file")
    pd.add_argument("--ensemble", nargs="+", default=None, metavar="RUN",
                    help="predict with the ensemble of these runs (a cv parent folder: its fold runs)")
    pd.add_argument("--acc", required=True, help="accelerometer file: T rows of x y z in g")
    pd.add_argument("--gyro", required=True, help="gyroscope file: T rows of x y z in rad/s")
    pd.add_argument("--rate-hz", type=float, default=None, help="sampling rate (default: the model's)")
    pd.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to run")
    pd.add_argument("--out", default=None, help="write window predictions as CSV here")

    x = sub.add_parser("export", help="export a trained model to ONNX")
    x.add_argument("checkpoint", nargs="?", default=None, help="run folder or checkpoint file")
    x.add_argument("--ensemble", nargs="+", default=None, metavar="RUN",
                   help="export the ensemble of these runs as one window graph (a cv parent folder: its folds)")
    x.add_argument("--out", default=None,
                   help="ONNX file or folder (default: RUN/model.onnx; RUN/model_images.onnx with --what images)")
    x.add_argument("--what", choices=("window", "images"), default="window",
                   help="window: signals [B,C,T] -> log-probs (imager inside); images: images -> logits")
    return p


def _explicit(ns: argparse.Namespace) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(Config)}
    return {k: v for k, v in vars(ns).items() if k in names}


def config_from_args(ns: argparse.Namespace) -> tuple[Config, str]:
    """Defaults < preset < --config file < flags."""
    import torch

    from harvit.config import resolve

    explicit = _explicit(ns)
    if getattr(ns, "config", None):
        base = Config.load(ns.config).to_dict()
        base.update(explicit)
        explicit = base
    return resolve(explicit, torch.cuda.is_available())


def cmd_train(ns: argparse.Namespace) -> int:
    cfg, preset = config_from_args(ns)
    print(f"preset: {preset}" + ("" if ns.__dict__.get("preset") else " (chosen by device; --preset to change)"),
          flush=True)
    from harvit.training import train

    results = train(cfg)
    try:
        from harvit.reporting.report import create_training_report

        path = create_training_report(cfg.run_dir)
        print(f"report: {path}", flush=True)
    except ImportError:
        pass
    return 0 if results else 1


def cmd_cv(ns: argparse.Namespace) -> int:
    cfg, preset = config_from_args(ns)
    print(f"preset: {preset}", flush=True)
    from harvit.training.cv import run_cv

    folds = ns.folds if ns.folds == "loso" else ns.folds.strip()
    result = run_cv(cfg, folds, baselines=not ns.no_baselines, minirocket=not ns.no_minirocket)
    s = result["summary"]
    print(f"cv: validation accuracy {100 * s['val_accuracy']['mean']:.2f} +- {100 * s['val_accuracy']['std']:.2f}, "
          f"macro-F1 {100 * s['val_macro_f1']['mean']:.2f} over {result['n_folds']} folds")
    print(f"report: {cfg.run_dir / 'cv_report.md'}", flush=True)
    return 0


def cmd_data(ns: argparse.Namespace) -> int:
    if ns.data_command != "info":
        raise HarvitError("harvit data: expected an action: info")
    from harvit.data import dataset_info

    print(dataset_info(ns.dataset, ns.data_dir))
    return 0


def cmd_evaluate(ns: argparse.Namespace) -> int:
    from harvit.evaluation.evaluate import evaluate_checkpoint, format_evaluation

    if ns.ensemble:
        from harvit.evaluation.ensemble import evaluate_ensemble, format_members

        targets = ([ns.target] if ns.target else []) + list(ns.ensemble)
        result = evaluate_ensemble(targets, split=ns.split, dataset=ns.dataset, data_dir=ns.data_dir,
                                   device=ns.device, json_path=ns.json)
        print(format_members(result))
        print(format_evaluation(result))
        return 0
    if not ns.target:
        raise HarvitError("harvit evaluate: expected a run folder or checkpoint file, or --ensemble RUN [RUN ...]")
    result = evaluate_checkpoint(ns.target, split=ns.split, dataset=ns.dataset, data_dir=ns.data_dir,
                                 device=ns.device, json_path=ns.json)
    print(format_evaluation(result))
    return 0


def cmd_report(ns: argparse.Namespace) -> int:
    from harvit.reporting.report import create_training_report

    print(create_training_report(ns.run_dir))
    return 0


def cmd_baseline(ns: argparse.Namespace) -> int:
    from harvit.evaluation.baseline import format_baseline, run_baseline

    result = run_baseline(ns.dataset, data_dir=ns.data_dir, seed=ns.seed, val_fraction=ns.val_fraction,
                          json_path=ns.json, train_stride=ns.train_stride, minirocket=not ns.no_minirocket)
    print(format_baseline(result))
    return 0


def cmd_profile(ns: argparse.Namespace) -> int:
    from harvit.reporting.profiler import profile_command

    cfg, _ = config_from_args(ns)
    sizes = [int(s) for s in ns.batch_sizes.split(",") if s.strip()]
    print(profile_command(cfg, out=ns.out, batch_sizes=sizes, trace_dir=ns.trace, steps=ns.steps))
    return 0


def cmd_predict(ns: argparse.Namespace) -> int:
    from harvit.deploy.predict import predict_command

    print(predict_command(ns.checkpoint, ns.acc, ns.gyro, rate_hz=ns.rate_hz, device=ns.device, out=ns.out,
                          ensemble=ns.ensemble))
    return 0


def cmd_export(ns: argparse.Namespace) -> int:
    from harvit.deploy.export import export_command

    print(export_command(ns.checkpoint, out=ns.out, what=ns.what, ensemble=ns.ensemble))
    return 0


COMMANDS = {
    "train": cmd_train, "cv": cmd_cv, "data": cmd_data, "evaluate": cmd_evaluate, "report": cmd_report,
    "baseline": cmd_baseline, "profile": cmd_profile, "predict": cmd_predict, "export": cmd_export,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input, 130/143 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        ns = parser.parse_args(argv)
        if not ns.command:
            parser.print_help()
            return 2
        setup_logging()
        return COMMANDS[ns.command](ns)
    except HarvitError as e:
        print(f"harvit: error: {e}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("harvit: interrupted", file=sys.stderr, flush=True)
        return 130
    except Exception as e:  # noqa: BLE001 - turn known runtime exits into codes
        from harvit.training.interrupts import Interrupted

        if isinstance(e, Interrupted):
            print(str(e), file=sys.stderr, flush=True)
            return e.code
        raise


if __name__ == "__main__":
    raise SystemExit(main())
