"""``harvit evaluate``, ``report``, ``predict`` and ``export``: the commands that read a trained run."""

from __future__ import annotations

import argparse

from harvit.cli.flags import DATA_DIR_HELP
from harvit.utils.errors import HarvitError


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    """``harvit evaluate``'s parser."""
    e = sub.add_parser("evaluate", help="metrics of a trained run on a split")
    e.add_argument("target", nargs="?", default=None, help="run folder or checkpoint file")
    e.add_argument("--ensemble", nargs="+", default=None, metavar="RUN",
                   help="evaluate the ensemble of these runs (a cv parent folder: its fold runs); the mean of "
                        "their window log-probabilities")
    e.add_argument("--split", choices=("test", "val"), default="test",
                   help="test subjects, or the run's validation subjects")
    e.add_argument("--dataset", default=None, help="evaluate on another dataset with the same classes")
    e.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    e.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to run")
    e.add_argument("--json", default=None, help="write the metrics here (default: RUN/evaluation_<split>.json)")


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


def add_report(sub: argparse._SubParsersAction) -> None:
    """``harvit report``'s parser."""
    r = sub.add_parser("report", help="plots and report.md of a run folder")
    r.add_argument("run_dir", help="run folder (writes plots/ and report.md there)")


def cmd_report(ns: argparse.Namespace) -> int:
    from harvit.reporting.report import create_training_report

    print(create_training_report(ns.run_dir))
    return 0


def add_predict(sub: argparse._SubParsersAction) -> None:
    """``harvit predict``'s parser."""
    pd = sub.add_parser("predict", help="predict activities on a recording of days (--recording: device file, "
                        "table or folder), a table with the training columns (--table), or raw acc + gyro files "
                        "(--acc/--gyro)")
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
                    "machine 1 can be faster, docs/benchmarks.md)")
    pd.add_argument("--timeline", default=None, help="--table: the timeline PNG (default: beside the CSV, "
                    "<csv name>_timeline.png)")
    rec = pd.add_argument_group("recordings of days (--recording)")
    rec.add_argument("--recording", default=None, metavar="FILE|FOLDER",
                     help="a device file (.cwa, .bin, .gt3x) or a table with times, or a folder of them (a cohort): "
                     "calibrated, non-wear found, predicted in chunks; writes daily.csv, hourly.csv, windows.csv, "
                     "bouts.csv, actogram.png and summary.json in --output-dir")
    rec.add_argument("--output-dir", default=None, metavar="DIR", help="--recording: where the outputs go (a "
                     "folder: one sub-folder per recording and cohort.csv)")
    rec.add_argument("--stride-s", type=float, default=None, help="--recording: seconds between window starts "
                     "(default: the window's length, non-overlapping)")
    rec.add_argument("--chunk-rows", type=int, default=1_000_000, help="--recording: samples read at once")
    rec.add_argument("--timezone", default=None, help="--recording: IANA time zone (e.g. Europe/London) of a "
                     "table's epoch times (device files carry local time)")
    rec.add_argument("--no-calibrate", action="store_true", help="--recording: skip gravity auto-calibration")
    rec.add_argument("--nonwear-sd-g", type=float, default=0.013, help="--recording: non-wear when every axis' SD "
                     "is below this (g) ...")
    rec.add_argument("--nonwear-min", type=float, default=60.0, help="--recording: ... for at least these minutes")
    rec.add_argument("--min-wear-h", type=float, default=16.0, help="--recording: a day with less wear is flagged "
                     "short_wear in daily.csv")
    rec.add_argument("--workers", type=int, default=1, help="--recording FOLDER: recordings predicted at once, "
                     "each in its own process")
    rec.add_argument("--shard", default=None, metavar="I/N", help="--recording FOLDER: predict files I, I+N, ... "
                     "of the sorted list only (a Slurm array: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT); "
                     "rerun without it to write cohort.csv")
    pd.add_argument("--smooth", choices=("hmm", "none"), default="hmm",
                    help="hmm: smooth the window predictions with the run's hidden Markov model (smoother.json, "
                    "fitted in training; a run without one is not smoothed, said in one line); none: each "
                    "window's own prediction")


def cmd_predict(ns: argparse.Namespace) -> int:
    import torch

    from harvit.deploy.predict import predict_command, predict_table_command

    if ns.threads < 0:
        raise HarvitError(f"--threads: got {ns.threads}, expected >= 0")
    if ns.threads:
        torch.set_num_threads(ns.threads)
    if ns.recording is not None:
        from harvit.deploy.cohort import predict_recordings_command
        from harvit.deploy.recording import RecordingOptions

        if ns.table is not None or ns.acc is not None or ns.gyro is not None or ns.ensemble:
            raise HarvitError("harvit predict: --recording takes one run, without --table, --acc/--gyro or --ensemble")
        if ns.output_dir is None:
            raise HarvitError("harvit predict --recording: expected --output-dir DIR for the outputs")
        opts = RecordingOptions(stride_s=ns.stride_s, chunk_rows=ns.chunk_rows, timezone=ns.timezone,
                                smooth=ns.smooth, calibrate=not ns.no_calibrate, nonwear_sd_g=ns.nonwear_sd_g,
                                nonwear_min=ns.nonwear_min, min_wear_h=ns.min_wear_h)
        print(predict_recordings_command(ns.checkpoint, ns.recording, ns.output_dir, opts, device=ns.device,
                                         workers=ns.workers, shard=ns.shard))
        return 0
    if ns.table is not None:
        if ns.acc is not None or ns.gyro is not None:
            raise HarvitError("harvit predict: --table or --acc/--gyro, not both")
        print(predict_table_command(ns.checkpoint, ns.table, rate_hz=ns.rate_hz, device=ns.device, out=ns.out,
                                    timeline=ns.timeline, smooth=ns.smooth))
        return 0
    if ns.acc is None or ns.gyro is None:
        raise HarvitError("harvit predict: expected --table FILE, or --acc FILE and --gyro FILE")
    if ns.timeline is not None:
        raise HarvitError("harvit predict: --timeline is drawn for --table only")
    print(predict_command(ns.checkpoint, ns.acc, ns.gyro, rate_hz=ns.rate_hz, device=ns.device, out=ns.out,
                          ensemble=ns.ensemble, smooth=ns.smooth))
    return 0


def add_export(sub: argparse._SubParsersAction) -> None:
    """``harvit export``'s parser."""
    x = sub.add_parser("export", help="export a trained model to ONNX")
    x.add_argument("checkpoint", nargs="?", default=None, help="run folder or checkpoint file")
    x.add_argument("--ensemble", nargs="+", default=None, metavar="RUN",
                   help="export the ensemble of these runs as one window graph (a cv parent folder: its folds)")
    x.add_argument("--out", default=None,
                   help="ONNX file or folder (default: RUN/model.onnx; RUN/model_images.onnx with --what images)")
    x.add_argument("--what", choices=("window", "images"), default="window",
                   help="window: signals [B,C,T] -> log-probs (imager inside); images: images -> logits")


def cmd_export(ns: argparse.Namespace) -> int:
    from harvit.deploy.export import export_command

    print(export_command(ns.checkpoint, out=ns.out, what=ns.what, ensemble=ns.ensemble))
    return 0

