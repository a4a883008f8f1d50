"""What a run's report reads: its files, its data set (loaded at most once) and its baselines.

The baselines are cached as ``baseline.json`` in the run folder. :func:`load_or_run_baseline` reads it
when it was made with the run's settings and holds at least the models the run's ``--baseline-set``
asks for (a larger set, e.g. from ``harvit baseline --run RUN --baseline-set all``, is kept and shown),
else fits them (:func:`harvit.evaluation.baseline.run_baseline`, itself cached per windows and split).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import harvit.data
from harvit.config import Config
from harvit.evaluation.baseline import BASELINE_VERSION, choose_baselines, run_baseline
from harvit.training.results import TrainingResults, saved_config
from harvit.utils.atomic import write_json
from harvit.utils.errors import HarvitError

if TYPE_CHECKING:
    from harvit.data import Dataset

BASELINE_FILE = "baseline.json"


def read_json(path: Path) -> Any:
    """A JSON file; a missing or unreadable one raises one :class:`HarvitError` naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarvitError(f"{path} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HarvitError(f"{path}: not readable JSON ({e})") from None


@dataclass
class RunData:
    """Loads the run's data set at most once; remembers why it could not."""

    config: Config
    results: TrainingResults
    given: Dataset | None = None
    loaded: Dataset | None = None
    problem: str | None = None
    tried: bool = False

    def get(self) -> Dataset | None:
        """The run's data set, checked against the classes and test windows it was trained on; None (and
        :attr:`problem` says why) when it cannot be loaded or differs."""
        if self.tried:
            return self.loaded
        self.tried = True
        try:
            if self.given is not None:
                ds = self.given
            else:
                ds = harvit.data.load_run_dataset(self.config)
        except HarvitError as e:
            self.problem = f"the data set could not be loaded ({e})"
            return None
        recorded = self.results.split.get("test")
        if list(ds.test.classes) != list(self.results.classes) or (
                recorded and (len(ds.test) != recorded.windows or ds.test.subjects() != recorded.subjects)):
            self.problem = (f"the data set loaded now ({getattr(ds, 'name', '?')}: {len(ds.test)} test "
                            "windows) is not the one this run was trained on")
            return None
        self.loaded = ds
        return ds


def baseline_matches(saved: dict[str, Any], dataset: str, seed: int, val_fraction: float,
                     train_stride: int | None = None, val_subjects: list[int] | None = None,
                     refit: bool = True) -> bool:
    """Whether a cached baseline result was made with these settings and the current feature set."""
    return (saved.get("dataset") == dataset and saved.get("seed") == seed
            and saved.get("val_fraction") == val_fraction and saved.get("version") == BASELINE_VERSION
            and saved.get("train_stride") == train_stride and (saved.get("val_subjects") or None) == val_subjects
            and saved.get("refit", True) == refit)


def _run_settings(cfg: Config) -> dict[str, Any]:
    """The settings a run's baselines follow: seed, fraction, stride, subjects, refit."""
    return {"seed": cfg.val_seed, "val_fraction": cfg.val_fraction, "train_stride": cfg.train_stride_or_none,
            "val_subjects": cfg.val_subject_list,  # names or ids
            "refit": cfg.refit}  # refitted on train + val as the model is


def _covers(saved: dict[str, Any], wanted: list[str] | None) -> bool:
    """Whether ``saved`` fitted (or had to skip) every wanted model; None: any set will do."""
    return wanted is None or set(wanted) <= set(saved.get("models", {})) | set(saved.get("skipped") or {})


def _saved(run: Path, name: str, cfg: Config) -> dict[str, Any] | None:
    """The run's ``baseline.json`` when it was made with the run's settings, else None."""
    path = run / BASELINE_FILE
    if not path.is_file():
        return None
    try:
        saved = read_json(path)
    except HarvitError:
        return None
    return saved if isinstance(saved, dict) and baseline_matches(saved, name, **_run_settings(cfg)) else None


def load_or_run_baseline(run: Path, data: RunData) -> tuple[dict[str, Any] | None, str]:
    """The run's ``baseline.json`` when it matches the run's settings and covers its ``--baseline-set``, else a
    fresh fit (then cached there).

    Returns:
        (baseline result or None, a note on where it came from or why it is missing).
    """
    cfg = data.config
    name = data.given.name if data.given is not None else cfg.dataset
    baseline_set = cfg.baseline_set
    ds = None
    if baseline_set == "auto":  # the set depends on the windows' size: the data set is needed to know it
        ds = data.get()
        wanted = None if ds is None else choose_baselines(baseline_set, int(ds.train.x.size))[0]
    else:
        wanted = choose_baselines(baseline_set, 0)[0]
    saved = _saved(run, name, cfg)
    if saved is not None and _covers(saved, wanted):
        return saved, f"cached in `{BASELINE_FILE}`"
    ds = ds or data.get()
    if ds is None:
        return None, f"not available: {data.problem}"
    result = run_baseline(name, json_path=run / BASELINE_FILE, windows=ds, baseline_set=baseline_set,
                          **_run_settings(cfg))
    if result.get("cached"):
        return result, f"read from the baseline cache (`{result['cache_file']}`) and copied to `{BASELINE_FILE}`"
    return result, f"fitted now in {result['total_time_s']:.1f} s and cached in `{BASELINE_FILE}`"


def keep_in_run(run: Path, result: dict[str, Any]) -> str:
    """After ``harvit baseline --run RUN``: write the result to ``RUN/baseline.json`` (what the run's report
    reads) unless that already holds a matching result with every model of this one; returns one line saying
    which."""
    config = run / "config.json"
    saved = _saved(run, result["dataset"], saved_config(read_json(config), str(config))) if config.is_file() else None
    if saved is not None and set(result["models"]) <= set(saved.get("models", {})):
        return f"kept {run / BASELINE_FILE}: it already holds these models"
    write_json(run / BASELINE_FILE, result)
    return f"written: {run / BASELINE_FILE} (`harvit report {run}` shows these baselines)"
