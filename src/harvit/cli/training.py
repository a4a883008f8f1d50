"""``harvit train``, ``harvit cv`` and ``harvit profile``: the commands that build a model from settings."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

from harvit.cli.flags import LEAD, add_config_flags, config_from_args, explicit_settings, torchrun_rank
from harvit.config import GPU_PRESET, PRESET_DESCRIPTIONS, PRESETS, PROFILE_KEYS, Config


def preset_list() -> str:
    """The presets, one indented line each (name, what it is), for a command's description."""
    width = max(len(n) for n in PRESET_DESCRIPTIONS)
    return "\n".join(f"  {name:<{width}}  {what}" for name, what in PRESET_DESCRIPTIONS.items())


#: The sentence of a command that takes every setting of ``harvit train`` without listing them.
EVERY_SETTING = ("Every setting of `harvit train` is a flag here too ({except_}); `harvit train --help` lists "
                 "them by topic.")


def add_train(sub: argparse._SubParsersAction) -> None:
    """``harvit train``'s parser."""
    t = sub.add_parser("train", help=f"train a model (--preset {' or '.join(PRESETS)}; flags: every setting)",
                       description="Train a model on a data set; its run folder (--output-dir/--run-name) gets the "
                                   "checkpoints, metrics and report.md.\n\n"
                                   "Start from a preset and change any setting with its flag (defaults < --preset "
                                   "< --config < flags; --print-config shows what will run):\n"
                                   f"{preset_list()}\n"
                                   f"Without --preset the device picks: {GPU_PRESET} with CUDA, cpu without. Each "
                                   "flag's help gives a preset's value where it differs from the default.\n\n"
                                   "Several GPUs: torchrun --nproc_per_node=N -m harvit train ... trains one model "
                                   "with DistributedDataParallel; --batch-size stays the global batch.")
    t.add_argument("--config", metavar="FILE", help="read settings from a config.json (flags override it)")
    t.add_argument("--print-config", action="store_true",
                   help="print the resolved settings (JSON: defaults < preset < --config < flags) and exit")
    add_config_flags(t)


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
    print(done_line(time.perf_counter() - t_start, results.train_time_s, report_s, cfg.baselines), flush=True)
    return 0 if results else 1


def done_line(wall_s: float, train_time_s: float, report_s: float | None, baselines: bool = True) -> str:
    """The last line of ``harvit train``: wall time from command start to the last file written."""
    parts = [f"training {train_time_s:.0f} s"]
    if report_s is not None:
        parts.append(f"report {report_s:.0f} s, " + ("baseline included" if baselines else "no baselines"))
    return f"done in {wall_s:.0f} s wall ({'; '.join(parts)})"


def add_cv(sub: argparse._SubParsersAction) -> None:
    """``harvit cv``'s parser: its own flags and the preset and data set listed; every other training setting
    is a flag too, listed by ``harvit train --help``."""
    cv = sub.add_parser("cv", help="cross-validation by subject: one run per fold of the training subjects",
                        description="Cross-validation by subject: the training subjects are cut into K folds; each "
                                    "fold trains one run that validates on its subjects; cv_report.md gives the "
                                    "folds, their mean and the folds' ensemble on the test subjects.",
                        epilog=EVERY_SETTING.format(except_="all but --report: cv_report.md is always written"))
    cv.add_argument("--folds", default="5", metavar="K|loso",
                    help="number of folds K >= 2, or loso (one fold per training subject)")
    cv.add_argument("--config", metavar="FILE", help="read settings from a config.json (flags override it)")
    cv.add_argument("--no-minirocket", action="store_true",
                    help="baselines without the time-series classifiers (MiniRocket, MultiRocket-Hydra, QUANT): faster")
    add_config_flags(cv, [f.name for f in dataclasses.fields(Config) if f.name != "report"], shown=LEAD)


def cmd_cv(ns: argparse.Namespace) -> int:
    cfg, preset = config_from_args(ns)
    print(f"preset: {preset}", flush=True)
    from harvit.training.cv import run_cv, summary_line

    if "refit" not in explicit_settings(ns) and not ns.config:
        # the folds' ensemble already learns from every training subject: a refit per fold would double the time
        cfg = dataclasses.replace(cfg, refit=False)
        print("cv: the folds are not refit (their ensemble covers every training subject; --refit refits each)",
              flush=True)

    folds = ns.folds if ns.folds == "loso" else ns.folds.strip()
    result = run_cv(cfg, folds, baselines=cfg.baselines, minirocket=not ns.no_minirocket)
    print(summary_line(result))
    print(f"report: {cfg.run_dir / 'cv_report.md'}", flush=True)
    return 0


def add_profile(sub: argparse._SubParsersAction) -> None:
    """``harvit profile``'s parser."""
    pr = sub.add_parser("profile", help="time encoding, forward and backward; batch-size and AMP sweeps",
                        description="Profile the model of a config on random windows (no data, no training): "
                                    "only the settings that shape the model, its images and the batch apply.")
    pr.add_argument("--out", default="profile.json", metavar="FILE", help="write the profile as JSON here")
    pr.add_argument("--batch-sizes", default="8,16,32,64,128,256",
                    help="comma-separated batch sizes (images per step) of the sweep")
    pr.add_argument("--trace", default=None, metavar="DIR", help="folder for a torch.profiler trace (TensorBoard)")
    pr.add_argument("--steps", type=int, default=5, metavar="N", help="timed steps per measurement")
    add_config_flags(pr, PROFILE_KEYS)


def cmd_profile(ns: argparse.Namespace) -> int:
    from harvit.reporting.profile_command import profile_command

    cfg, _ = config_from_args(ns)
    sizes = [int(s) for s in ns.batch_sizes.split(",") if s.strip()]
    print(profile_command(cfg, out=ns.out, batch_sizes=sizes, trace_dir=ns.trace, steps=ns.steps))
    return 0

