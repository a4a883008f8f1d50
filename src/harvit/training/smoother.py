"""A run's ``smoother.json``: the hidden Markov model that ``harvit predict --smooth hmm`` applies.

Fitted once, when model selection ends (:func:`fit_run_smoother`, called by
:func:`harvit.training.loop.fit`): the transitions from the training data's label sequences, the
emissions from the selected model's predictions on the validation subjects
(:func:`harvit.models.smoother.fit_smoother`). A run trained before smoothers existed gets one from its
folder with :func:`smoother_for_run_dir`.

Label sequences: harvit's loaders of recordings (HAPT, UCI HAR, tables) keep each recording's windows
together and in time order, so a sequence is a stretch of consecutive windows of one subject; windows
``stride`` samples apart (``meta["stride"]``). Data without a known stride (ready windows in ``.npz`` or
``.ts`` files) get no smoother.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harvit.config import Config
from harvit.data import Windows, load_run_dataset, train_val_split
from harvit.evaluation.inference import evaluate_split, window_log_probs
from harvit.models import checkpoint as ck
from harvit.models.loading import load_trained
from harvit.models.smoother import HmmSmoother, fit_smoother, save_smoother
from harvit.training.run import Run
from harvit.utils.errors import HarvitError
from harvit.utils.logging import log


def label_sequences(w: Windows) -> list[np.ndarray]:
    """The windows' labels cut into sequences where the subject changes: int64 arrays, in stored order."""
    if not len(w):
        return []
    cuts = np.flatnonzero(w.subject[1:] != w.subject[:-1]) + 1
    return np.split(w.y, cuts)


def window_step_s(w: Windows) -> float | None:
    """Seconds between consecutive windows of a recording (``meta["stride"] / rate_hz``); None when unknown."""
    stride = w.meta.get("stride")
    if not stride or not w.rate_hz or float(stride) <= 0:
        return None
    return float(stride) / float(w.rate_hz)


def _describe(s: HmmSmoother) -> str:
    stay = np.diag(s.transition).mean()
    return (f"smoother: HMM over {s.n_classes} classes: transitions from {s.info['sequences']} training "
            f"recordings ({s.info['windows']} windows {s.step_s:g} s apart, mean stay {stay:.4f} a step), "
            f"emissions from {s.info['val_windows']} validation windows")


def fit_run_smoother(run: Run) -> HmmSmoother | None:
    """Fit the run's smoother at the end of its selection phase and write ``smoother.json`` (rank 0).

    ``best.pt`` (the selected epoch's weights) is loaded into ``run.model`` and scores the validation
    split; the training data (``run.dataset.train``, every training subject) gives the label sequences.
    Returns None, with one log line, when the windows' stride is unknown or there are no validation windows.
    Every rank calls it (the validation pass is shared under torchrun).
    """
    train = run.dataset.train
    step = window_step_s(train)
    if step is None or not len(run.windows["val"]):
        why = "the windows' stride is unknown" if step is None else "no validation windows"
        log(f"smoother: none ({why}); harvit predict will not smooth with this run")
        return None
    best_path = run.run_dir / "best.pt"

    def load_best() -> None:
        ck.load_model_state(run.model, ck.load_checkpoint(best_path, map_location=run.device)["model"], str(best_path))

    run.dist.on_main(load_best)
    run.dist.broadcast_module(run.model)
    val = evaluate_split(run.model, run.splits["val"], run.cfg.eval_batch_size, run.autocast, run.dist)
    smoother = fit_smoother(label_sequences(train), step, val["y_true"].numpy(), val["y_pred"].numpy(), run.classes)
    run.dist.on_main(save_smoother, smoother, run.run_dir)
    log(_describe(smoother))
    return smoother


def smoother_for_run_dir(run_dir: str | Path, device: str = "cpu", data_dir: str | None = None) -> HmmSmoother:
    """Fit (not save) the smoother of a finished run from its folder: its data set and validation subjects
    rebuilt from ``config.json``, the selected model (``selected.pt`` after a refit, else ``best.pt``)
    on the validation windows.

    Raises:
        HarvitError: a folder without ``config.json`` or a checkpoint, or data without a known stride.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise HarvitError(f"{run_dir}: no config.json; expected a run folder")
    cfg = Config.load(run_dir / "config.json")
    ckpt = run_dir / ("selected.pt" if (run_dir / "selected.pt").is_file() else "best.pt")
    if not ckpt.is_file():
        raise HarvitError(f"{run_dir}: no selected.pt or best.pt; expected a trained run folder")
    ds = load_run_dataset(cfg, data_dir=data_dir)
    step = window_step_s(ds.train)
    if step is None:
        raise HarvitError(f"{run_dir}: its windows' stride is unknown ({cfg.dataset}); no smoother can be fitted")
    _, val = train_val_split(ds.train, cfg.val_fraction, cfg.val_seed, cfg.val_subject_list)
    trained = load_trained(ckpt, device)
    pred = window_log_probs(trained, val.x).argmax(axis=1)
    smoother = fit_smoother(label_sequences(ds.train), step, val.y, pred, list(ds.train.classes))
    log(_describe(smoother))
    return smoother
