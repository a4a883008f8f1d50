"""``harvit predict RUN --recording FILE|FOLDER --output-dir DIR``: one recording, or a cohort of them.

A folder: every device file and table in it (sorted by name) is predicted into ``DIR/<file name>/``
(:mod:`harvit.deploy.outputs`). The run is resumable: a recording whose folder holds ``summary.json`` is skipped.
``--workers N`` predicts N recordings at once in separate processes (:class:`concurrent.futures.ProcessPoolExecutor`,
torch's threads split between them). ``DIR/cohort.csv`` then has one row per person (recording).

Beyond one machine, a Slurm job array shares the files: ``--shard I/N`` takes files ``I, I + N, I + 2N, ...``
of the sorted list (I from 0), so ``--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`` in an array
``--array=0-(N-1)`` gives every file to exactly one task. A shard writes its recordings' folders only; the same
command without ``--shard`` afterwards (every recording is then done and skipped) writes ``cohort.csv``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from harvit.data.devices import is_device_file
from harvit.data.tables import TABLE_SUFFIXES
from harvit.deploy.outputs import DONE_FILE, write_outputs
from harvit.deploy.recording import RecordingOptions, predict_recording_file
from harvit.deploy.smoothing import resolve_smoother
from harvit.deploy.summary import NONWEAR
from harvit.deploy.table import table_options
from harvit.models.loading import load_trained
from harvit.utils.atomic import write_text
from harvit.utils.errors import HarvitError
from harvit.utils.logging import log
from harvit.utils.runtime import pick_device

COHORT_FILE = "cohort.csv"


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` -> (I, N) with 0 <= I < N; None for None."""
    if text is None:
        return None
    try:
        i, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise HarvitError(f"--shard: got {text!r}, expected I/N (e.g. 0/4: the first of 4 shards)") from None
    if not (n >= 1 and 0 <= i < n):
        raise HarvitError(f"--shard: got {text!r}, expected I/N with 0 <= I < N")
    return i, n


def recording_files(folder: Path) -> list[Path]:
    """The device files and tables directly in ``folder``, sorted by name."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                   and (is_device_file(p) or p.name.lower().endswith(TABLE_SUFFIXES)))
    if not files:
        raise HarvitError(f"--recording {folder}: no device files (.cwa, .bin, .gt3x) or tables "
                          f"({', '.join(TABLE_SUFFIXES)}) in this folder")
    return files


_MODEL: dict[str, Any] = {}


def _load(run: str, device: str, smooth: str) -> tuple[Any, Any]:
    """The run's model and smoother, loaded once per process."""
    key = f"{run}|{device}|{smooth}"
    if key not in _MODEL:
        trained = load_trained(run, pick_device(device))
        table_options(trained)  # a run not trained on a table is refused before any file is read
        _MODEL.clear()
        _MODEL[key] = (trained, resolve_smoother(trained.path, trained.classes, smooth))
    return _MODEL[key]


def predict_one(run: str, recording: str, out_dir: str, opts: RecordingOptions, device: str = "auto",
                threads: int = 0) -> dict[str, Any]:
    """Predict one recording into ``out_dir`` (see :mod:`harvit.deploy.outputs`); returns its summary."""
    if threads:
        torch.set_num_threads(threads)
    trained, smoother = _load(run, device, opts.smooth)
    series = predict_recording_file(trained, recording, opts, smoother=smoother)
    model = {"run": str(Path(trained.path).parent), "classes": list(trained.classes), "rate_hz": trained.rate_hz,
             "window_length": int(trained.window_length), "options": asdict(opts)}
    return write_outputs(series, out_dir, opts.min_wear_h, title=f"{Path(recording).name}: activity per day",
                         model=model)


def _predict_safe(run: str, recording: str, out_dir: str, opts: RecordingOptions, device: str, threads: int
                  ) -> tuple[str, str | None]:
    """:func:`predict_one` in a worker: (recording, None) or (recording, the one-line error)."""
    try:
        predict_one(run, recording, out_dir, opts, device, threads)
    except HarvitError as e:
        return recording, str(e)
    return recording, None


def cohort_table(out_dir: Path, files: list[Path], errors: dict[str, str]) -> pd.DataFrame:
    """One row per recording: its days, valid days, wear per day, and the average day's minutes per class
    (adjusted for missing time), from each folder's ``summary.json``; failed recordings carry their error."""
    rows = []
    for f in files:
        done = out_dir / f.name / DONE_FILE
        row: dict[str, Any] = {"recording": f.name}
        if done.is_file():
            s = json.loads(done.read_text(encoding="utf-8"))
            rec = s.get("recording", {})
            row.update({"start": rec.get("start"), "end": rec.get("end"), "days": s["days"],
                        "valid_days": s["valid_days"], "wear_h": s["wear_h"], "nonwear_h": s["nonwear_h"],
                        "wear_h_per_day": round(s["wear_h"] / max(1, s["days"]), 2)})
            row.update({f"{c}_min_per_day": v for c, v in s["average_day"]["minutes"].items()})
            row["error"] = ""
        else:
            row["error"] = errors.get(str(f), "not predicted")
        rows.append(row)
    return pd.DataFrame(rows)


def predict_recordings_command(run: str | Path, recording: str | Path, output_dir: str | Path,
                               opts: RecordingOptions | None = None, device: str = "auto", workers: int = 1,
                               shard: str | None = None, threads: int = 0) -> str:
    """``harvit predict RUN --recording FILE|FOLDER --output-dir DIR``; returns the text to print.

    Raises:
        HarvitError: a bad flag, a missing recording, or (for one file) anything
            :func:`~harvit.deploy.recording.predict_recording_file` refuses; for a folder, after every file was
            tried and ``cohort.csv`` written, one line naming the files that failed.
    """
    opts = (opts or RecordingOptions()).validate()
    recording, out_dir = Path(recording).expanduser(), Path(output_dir).expanduser()
    if workers < 1:
        raise HarvitError(f"--workers: got {workers}, expected >= 1")
    part = parse_shard(shard)
    if not recording.exists():
        raise HarvitError(f"--recording: no such file or folder {recording}")
    if not recording.is_dir():
        if part is not None:
            raise HarvitError("--shard: shares the files of a --recording FOLDER; got one file")
        summary = predict_one(str(run), str(recording), str(out_dir), opts, device, threads)
        return "\n".join([f"{recording.name}: {summary['recording']['start']} to {summary['recording']['end']}",
                          summary["_terminal"], f"outputs: {out_dir} (daily.csv, hourly.csv, windows.csv, bouts.csv, "
                          "actogram.png, summary.json)"])
    files = recording_files(recording)
    mine = files if part is None else files[part[0]::part[1]]
    todo = [f for f in mine if not (out_dir / f.name / DONE_FILE).is_file()]
    log(f"{recording}: {len(files)} recordings" + (f", shard {part[0]}/{part[1]}: {len(mine)}" if part else "")
        + f", {len(mine) - len(todo)} done before, {len(todo)} to predict")
    errors: dict[str, str] = {}
    if todo:
        _load(str(run), device, opts.smooth)  # refuse a bad run once, before any worker starts
    if workers == 1 or len(todo) <= 1:
        for k, f in enumerate(todo, 1):
            log(f"[{k}/{len(todo)}] {f.name}")
            _, err = _predict_safe(str(run), str(f), str(out_dir / f.name), opts, device, threads)
            if err:
                errors[str(f)] = err
                log(f"{f.name}: failed: {err}")
    else:
        per = threads or max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_predict_safe, str(run), str(f), str(out_dir / f.name), opts, device, per)
                       for f in todo]
            for k, fut in enumerate(as_completed(futures), 1):
                name, err = fut.result()
                log(f"[{k}/{len(todo)}] {Path(name).name}: " + ("done" if err is None else f"failed: {err}"))
                if err:
                    errors[name] = err
    lines = [f"{len(mine) - len(errors)} of {len(mine)} recordings predicted into {out_dir}"]
    if part is None:
        table = cohort_table(out_dir, files, errors)
        write_text(out_dir / COHORT_FILE, table.to_csv(index=False))
        lines.append(f"cohort table: {out_dir / COHORT_FILE} ({len(table)} recordings, "
                     f"{int((table['error'] == '').sum())} done)")
    else:
        lines.append("this shard's recordings only: run the same command without --shard afterwards to write "
                     f"{COHORT_FILE}")
    if errors:
        names = ", ".join(Path(k).name for k in errors)
        raise HarvitError(f"{len(errors)} of {len(mine)} recordings failed ({names}); see the lines above"
                          + ("" if part else f" and {COHORT_FILE}"))
    return "\n".join(lines)


__all__ = ["COHORT_FILE", "NONWEAR", "parse_shard", "predict_one", "predict_recordings_command", "recording_files"]
