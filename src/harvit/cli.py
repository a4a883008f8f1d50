"""Command-line interface. Every training flag and its default come from :class:`harvit.config.Config`.

Subcommands: train, cv, data info, evaluate, report, baseline, profile, predict, export.
Bad input prints one line ``harvit: error: ...`` and exits with code 2. Under torchrun (``harvit train``
as every rank) rank 0 speaks for all: it prints, and writes the report after training.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import types
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, NoReturn, Union, get_args, get_origin, get_type_hints

from harvit.config import OWN_DATA_FIELDS, PRESETS, PROFILE_KEYS, Config
from harvit.utils.errors import HarvitError
from harvit.utils.logging import setup_logging


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag on one line (exit 2), without the usage dump."""

    def error(self, message: str) -> NoReturn:
        # main() prints "harvit: error: "; a subcommand's parser adds its own name ("train: ...")
        sub = self.prog.removeprefix("harvit").strip()
        raise HarvitError(f"{sub + ': ' if sub else ''}{message} (see --help)")


class _Widths(argparse.Action):
    """``--hidden-dims 1024 512 256`` and ``--hidden-dims 1024,512,256``: one comma-separated string."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        parts = [p.strip() for v in values for p in str(v).split(",") if p.strip()]
        setattr(namespace, self.dest, ",".join(parts))


def _base_type(tp: Any) -> Any:
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return args[0]
    return tp


def preset_note(name: str, default: Any) -> str:
    """``"cpu preset: 24"`` for each preset whose value of setting ``name`` differs from ``default``."""
    return "; ".join(f"{p} preset: {v[name]}" for p, v in PRESETS.items() if name in v and v[name] != default)


def registered_names(registry: str) -> list[str]:
    """The names in a registry: ``datasets`` (:data:`harvit.data.DATASETS`) or ``encodings``
    (:data:`harvit.imaging.encodings.ENCODINGS`), imported when first asked (the encodings load torch)."""
    if registry == "datasets":
        from harvit.data import dataset_names

        return dataset_names()
    if registry == "baselines":
        from harvit.evaluation.baseline import ordered

        return ordered()
    from harvit.imaging.encodings import ENCODINGS

    return ENCODINGS.names()


class Registered:
    """``%(registered)s`` in a help text: the registry's names, read only when the help is shown."""

    def __init__(self, registry: str) -> None:
        self.registry = registry

    def __str__(self) -> str:
        return ", ".join(registered_names(self.registry))


def expand_help(text: str, registry: str | None) -> str:
    """A help text with ``%(registered)s`` filled from ``registry`` (for pages generated from the help)."""
    return text % {"registered": Registered(registry)} if registry else text


def check_registered(cfg: Config) -> Config:
    """Check the settings that name registered things (``--dataset``, ``--encodings``) against their registries,
    which sit above :mod:`harvit.config`; a bad name raises one :class:`HarvitError` naming the flag."""
    from harvit.data import check_dataset
    from harvit.imaging.encodings import check_encodings

    check_dataset(cfg.dataset)
    check_encodings(cfg.encoding_list)
    return cfg


def add_config_flags(parser: argparse.ArgumentParser, names: Collection[str] | None = None) -> None:
    """One flag per Config field (``--snake-case``), default SUPPRESS so only given flags are seen.

    Args:
        parser: the (sub)command's parser.
        names: only these settings (default: every one).
    """
    hints = get_type_hints(Config)
    arg_groups: dict[str, argparse._ArgumentGroup] = {}
    defaults = Config()
    for f in dataclasses.fields(Config):
        if names is not None and f.name not in names:
            continue
        group = f.metadata.get("group", "train")
        g = arg_groups.setdefault(group, parser.add_argument_group(f"{group} settings"))
        tp = _base_type(hints[f.name])
        default = getattr(defaults, f.name)
        note = preset_note(f.name, default)
        help_text = f"{f.metadata.get('help', '')} (default: {default}{'; ' + note if note else ''})"
        flag = "--" + f.name.replace("_", "-")
        kw: dict[str, Any] = dict(dest=f.name, default=argparse.SUPPRESS, help=help_text)
        if tp is bool:
            action = g.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif f.name == "hidden_dims":
            action = g.add_argument(flag, nargs="*", action=_Widths, metavar="WIDTH", **kw)
        else:
            if f.metadata.get("choices"):
                kw["choices"] = f.metadata["choices"]
            if f.name == "preset":
                kw["choices"] = tuple(PRESETS)
            action = g.add_argument(flag, type=tp, metavar=f.name.upper() if tp is not str else None, **kw)
        if f.metadata.get("registry"):
            action.registered = Registered(f.metadata["registry"])  # type: ignore[attr-defined]


def build_parser() -> argparse.ArgumentParser:
    data_dir_help = "data folder (default: $HARVIT_DATA_DIR, then ~/.cache/harvit/data)"
    p = _Parser(prog="harvit", description="Human Activity Recognition with ViTs on signal images.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    t = sub.add_parser("train", help="train a model (flags: every setting; --preset pix2seq or cpu)",
                       description="Train a model. Without --preset the device picks one (cpu without CUDA, "
                                   "pix2seq with it); each flag's help gives the presets' values where they differ "
                                   "from the default; --print-config shows the settings that will run. Under "
                                   "torchrun (torchrun --nproc_per_node=N -m harvit train ...) the processes train "
                                   "one model with DistributedDataParallel; --batch-size stays the global batch.")
    t.add_argument("--config", help="read settings from a config.json (flags override it)")
    t.add_argument("--print-config", action="store_true",
                   help="print the resolved settings (JSON: defaults < preset < --config < flags) and exit")
    add_config_flags(t)

    cv = sub.add_parser("cv", help="cross-validation by subject: one run per fold of the training subjects")
    cv.add_argument("--folds", default="5", help="number of folds K >= 2, or loso (one fold per training subject)")
    cv.add_argument("--config", help="read settings from a config.json (flags override it)")
    cv.add_argument("--no-minirocket", action="store_true",
                    help="baselines without the aeon models (MiniRocket, MultiRocket-Hydra, QUANT): faster")
    add_config_flags(cv, [f.name for f in dataclasses.fields(Config) if f.name != "report"])  # cv_report.md always

    d = sub.add_parser("data", help="dataset tools")
    dsub = d.add_subparsers(dest="data_command", metavar="ACTION", parser_class=_Parser)
    di = dsub.add_parser("info", help="windows per split and class, subjects, channels, rate")
    di_dataset = di.add_argument("dataset", help="a built-in data set (%(registered)s) or a path to your own data "
                                 "(table, .npz, .ts)")
    di_dataset.registered = Registered("datasets")  # type: ignore[attr-defined]
    di.add_argument("--data-dir", default=None, help=data_dir_help)
    di.add_argument("--config", default=None, help="read the own-data settings from a run's config.json")
    add_config_flags(di, OWN_DATA_FIELDS + ("nan_policy", "train_stride"))

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

    b = sub.add_parser("baseline", help="logistic regression and boosted trees on window statistics; MiniRocket, "
                                            "MultiRocket-Hydra and QUANT on the raw windows (cached)",
                       description="Fit the baselines on the windows a run would use: the same settings as "
                                   "`harvit train` (a preset, chosen by device without --preset, or a run "
                                   "folder's config.json), then the flags given here.")
    b.add_argument("--run", default=None, metavar="RUN_DIR",
                   help="follow this run folder's config.json (data set, windows, validation subjects)")
    b.add_argument("--preset", choices=tuple(PRESETS), default=None,
                   help="follow this preset's settings (default: by device, as harvit train)")
    b.add_argument("--dataset", default=None, help=f"dataset name (default: {Config.dataset}, or the run's)")
    b.add_argument("--data-dir", default=None, help=data_dir_help)
    b.add_argument("--seed", type=int, default=None,
                   help="seed of the validation-subject hold-out (default: 42, or the run's)")
    b.add_argument("--val-fraction", type=float, default=None,
                   help="fraction of training subjects held out (default: 0.2, or the run's)")
    b.add_argument("--train-stride", type=int, default=None,
                   help="step between training-window starts in samples, 0: the data set's own "
                        "(default: the preset's or the run's)")
    b.add_argument("--json", default=None, help="write the results as JSON here")
    add_config_flags(b, [f for f in OWN_DATA_FIELDS if f != "train_overlap"])
    b.add_argument("--no-minirocket", action="store_true",
                   help="skip the aeon models (MiniRocket, MultiRocket-Hydra, QUANT): seconds instead of minutes")
    b.add_argument("--no-refit", action="store_true",
                   help="test each model as fitted on the training windows (default: refitted on training + "
                        "validation windows after scoring validation, as the model)")
    add_config_flags(b, ["baseline_set"])
    b_models = b.add_argument("--models", default=None, metavar="KEYS",
                              help="comma-separated baselines to fit (%(registered)s; default: --baseline-set's)")
    b_models.registered = Registered("baselines")  # type: ignore[attr-defined]

    pr = sub.add_parser("profile", help="time encoding, forward and backward; batch-size and AMP sweeps",
                        description="Profile the model of a config on random windows (no data, no training): "
                                    "only the settings that shape the model, its images and the batch apply.")
    pr.add_argument("--out", default="profile.json", help="write the profile as JSON here")
    pr.add_argument("--batch-sizes", default="8,16,32,64,128,256",
                    help="comma-separated batch sizes (images per step) of the sweep")
    pr.add_argument("--trace", default=None, help="folder for a torch.profiler trace (TensorBoard)")
    pr.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    add_config_flags(pr, PROFILE_KEYS)

    pd = sub.add_parser("predict", help="predict activities on a table with the training columns (--table), or on "
                        "raw acc + gyro files (--acc/--gyro)")
    pd.add_argument("checkpoint", nargs="?", default=None, help="run folder or checkpoint file")
    pd.add_argument("--ensemble", nargs="+", default=None, metavar="RUN",
                    help="predict with the ensemble of these runs (a cv parent folder: its fold runs)")
    pd.add_argument("--table", default=None, help="a table (.csv, .csv.gz, .parquet or a folder) with the columns "
                    "the run was trained on; labels optional. Writes the window CSV and a timeline PNG")
    pd.add_argument("--acc", default=None, help="accelerometer file: T rows of x y z in g (with --gyro)")
    pd.add_argument("--gyro", default=None, help="gyroscope file: T rows of x y z in rad/s (with --acc)")
    pd.add_argument("--rate-hz", type=float, default=None,
                    help="sampling rate of --acc/--gyro files (default: the model's), or of a --table without a "
                    "time column (default: the training --rate, else the model's)")
    pd.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to run")
    pd.add_argument("--out", default=None, help="write window predictions as CSV here (--table: default "
                    "RUN/predict_<table>.csv)")
    pd.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default; on a busy "
                    "machine 1 can be faster, docs/BENCHMARKS.md)")
    pd.add_argument("--timeline", default=None, help="--table: the timeline PNG (default: beside the CSV, "
                    "<csv name>_timeline.png)")

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

    explicit = _explicit(ns)
    if getattr(ns, "config", None):
        base = Config.load(ns.config).to_dict()
        base.update(explicit)
        explicit = base
    return resolve_checked(explicit)


def resolve_checked(explicit: dict[str, Any]) -> tuple[Config, str]:
    """:func:`harvit.config.resolve` (the preset by device when none is given, the data set's windowing from
    :func:`harvit.data.windowing`), then the registered names checked (:func:`check_registered`)."""
    import torch

    from harvit.config import resolve
    from harvit.data import windowing

    cfg, preset = resolve(explicit, torch.cuda.is_available(), windowing)
    return check_registered(cfg), preset


def torchrun_rank() -> int:
    """This process's rank under torchrun (0 outside it)."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def cmd_train(ns: argparse.Namespace) -> int:
    t_start = getattr(ns, "t_start", time.perf_counter())
    cfg, preset = config_from_args(ns)
    if getattr(ns, "print_config", False):
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0
    if torchrun_rank() == 0:
        print(f"preset: {preset}" + ("" if ns.__dict__.get("preset") else " (chosen by device; --preset to change)"),
              flush=True)
    from harvit.training import train

    results = train(cfg)
    if torchrun_rank() != 0:
        return 0 if results else 1
    t_report = time.perf_counter()
    report_s = None
    try:
        if cfg.report:
            from harvit.reporting.report import create_training_report

            path = create_training_report(cfg.run_dir, baseline=cfg.baselines)
            report_s = time.perf_counter() - t_report
            print(f"report: {path}", flush=True)
    except ImportError:
        pass
    print(done_line(time.perf_counter() - t_start, results, report_s, cfg.baselines), flush=True)
    return 0 if results else 1


def done_line(wall_s: float, results: dict[str, Any], report_s: float | None, baselines: bool = True) -> str:
    """The last line of ``harvit train``: wall time from command start to the last file written."""
    parts = [f"training {results.get('train_time_s', 0):.0f} s"]
    if report_s is not None:
        parts.append(f"report {report_s:.0f} s, " + ("baseline included" if baselines else "no baselines"))
    return f"done in {wall_s:.0f} s wall ({'; '.join(parts)})"


def cmd_cv(ns: argparse.Namespace) -> int:
    cfg, preset = config_from_args(ns)
    print(f"preset: {preset}", flush=True)
    from harvit.training.cv import run_cv, summary_line

    folds = ns.folds if ns.folds == "loso" else ns.folds.strip()
    result = run_cv(cfg, folds, baselines=cfg.baselines, minirocket=not ns.no_minirocket)
    print(summary_line(result))
    print(f"report: {cfg.run_dir / 'cv_report.md'}", flush=True)
    return 0


def cmd_data(ns: argparse.Namespace) -> int:
    if ns.data_command != "info":
        raise HarvitError("harvit data: expected an action: info")

    from harvit.data import dataset_info
    from harvit.data.options import OwnOptions

    settings = Config.load(ns.config).to_dict() if ns.config else {}
    settings.update(_explicit(ns))
    Config.from_dict({k: v for k, v in settings.items() if k != "dataset"}, source="settings")  # type checks
    print(dataset_info(ns.dataset, ns.data_dir, OwnOptions.from_settings(settings),
                       nan_policy=settings.get("nan_policy", "error"),
                       train_stride=settings.get("train_stride") or None))
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
    from harvit.data.options import OwnOptions
    from harvit.evaluation.baseline import format_baseline, run_baseline
    from harvit.reporting.report import keep_in_run

    cfg, source = baseline_settings(ns)
    print(f"settings: {source}", flush=True)
    result = run_baseline(cfg.dataset, data_dir=cfg.data_dir, seed=cfg.val_seed, val_fraction=cfg.val_fraction,
                          json_path=ns.json, train_stride=cfg.train_stride_or_none, nan_policy=cfg.nan_policy,
                          options=OwnOptions.from_settings(cfg.to_dict()),
                          val_subjects=cfg.val_subject_list, minirocket=not ns.no_minirocket,
                          refit=not ns.no_refit, baseline_set=cfg.baseline_set,
                          models=tuple(m.strip() for m in ns.models.split(",") if m.strip()) if ns.models else None)
    print(format_baseline(result))
    if ns.run and not ns.json:
        print(keep_in_run(Path(ns.run), result))
    return 0


def cmd_profile(ns: argparse.Namespace) -> int:
    from harvit.reporting.profile_command import profile_command

    cfg, _ = config_from_args(ns)
    sizes = [int(s) for s in ns.batch_sizes.split(",") if s.strip()]
    print(profile_command(cfg, out=ns.out, batch_sizes=sizes, trace_dir=ns.trace, steps=ns.steps))
    return 0


def cmd_predict(ns: argparse.Namespace) -> int:
    import torch

    from harvit.deploy.predict import predict_command, predict_table_command

    if ns.threads < 0:
        raise HarvitError(f"--threads: got {ns.threads}, expected >= 0")
    if ns.threads:
        torch.set_num_threads(ns.threads)
    if ns.table is not None:
        if ns.acc is not None or ns.gyro is not None:
            raise HarvitError("harvit predict: --table or --acc/--gyro, not both")
        print(predict_table_command(ns.checkpoint, ns.table, rate_hz=ns.rate_hz, device=ns.device, out=ns.out,
                                    timeline=ns.timeline))
        return 0
    if ns.acc is None or ns.gyro is None:
        raise HarvitError("harvit predict: expected --table FILE, or --acc FILE and --gyro FILE")
    if ns.timeline is not None:
        raise HarvitError("harvit predict: --timeline is drawn for --table only")
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
    t_start = time.perf_counter()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        ns = parser.parse_args(argv)
        ns.t_start = t_start
        if not ns.command:
            parser.print_help()
            return 2
        setup_logging()
        return COMMANDS[ns.command](ns)
    except HarvitError as e:
        return speak_for_all(f"harvit: error: {e}", 2)
    except KeyboardInterrupt:
        print("harvit: interrupted", file=sys.stderr, flush=True)
        return 130
    except Exception as e:  # noqa: BLE001 - turn known runtime exits into codes
        from harvit.training.interrupts import Interrupted

        if isinstance(e, Interrupted):
            return speak_for_all(str(e), e.code, wait=False)
        raise


#: Seconds a rank other than 0 waits, after an error, for rank 0 to end (torchrun then stops it).
QUIET_WAIT_S = 10.0


def speak_for_all(line: str, code: int, wait: bool = True) -> int:
    """Print the closing line on stderr and return ``code``; under torchrun only rank 0 prints.

    The ranks agree on errors and on stopping (every rank raises the same one), so rank 0 has the line
    too. For an error another rank first waits for rank 0 to print and end (torchrun then stops the
    others); it prints the line itself, with its rank, only when rank 0 is still running after
    :data:`QUIET_WAIT_S` (an error of its own). An interrupted rank leaves at once (``wait=False``).
    """
    rank = torchrun_rank()
    if rank != 0:
        if not wait:
            return code
        time.sleep(QUIET_WAIT_S)
        line = f"[rank {rank}] {line}"
    print(line, file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
