"""Ensembles of trained runs: the mean of the members' window log-probabilities.

``harvit evaluate --ensemble RUN [RUN ...]`` (or a cross-validation parent folder, whose
``fold_*`` runs are the members) scores the mean over members of each window's log-probabilities
[N, K] (renormalised with a log-softmax, which keeps the arg-max): the geometric mean of the
members' probabilities. Every member must share the classes, channels and window length; a
``val`` split also needs the same validation subjects (cross-validation folds do not share them).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from harvit.evaluation.evaluate import evaluation_windows, metrics_record
from harvit.evaluation.inference import Split, evaluate_split
from harvit.evaluation.metrics import METRICS, metric_record
from harvit.models.ensemble import FOLD_PREFIX, ensemble_members, load_members, mean_log_probs
from harvit.utils.atomic import write_json
from harvit.utils.errors import HarvitError
from harvit.utils.runtime import autocast_factory, pick_device

if TYPE_CHECKING:
    from harvit.data import Dataset

__all__ = ["FOLD_PREFIX", "ensemble_members", "evaluate_ensemble", "format_members", "load_members",
           "mean_log_probs"]

def evaluate_ensemble(targets: list[str | Path], split: str = "test", dataset: str | Dataset | None = None,
                      data_dir: str | None = None, device: str = "auto",
                      json_path: str | Path | None = None) -> dict[str, Any]:
    """Evaluate the ensemble of ``targets`` on a split; the result has the keys of
    :func:`harvit.evaluation.evaluate.evaluate_checkpoint` plus ``members`` (path and every registered
    metric of each member on the same windows).

    ``json_path`` default: ``<first target>/evaluation_ensemble_<split>.json`` (the parent folder of a
    cross-validation run).
    """
    t0 = time.perf_counter()
    dev = pick_device(device)
    members = load_members(targets, dev)
    if split == "val":
        vals = {(m.config.val_subjects, m.config.val_seed, m.config.val_fraction) for m in members}
        if len(vals) > 1:
            raise HarvitError("--split val: the members hold out different validation subjects (e.g. the folds "
                              "of a cross-validation); evaluate the ensemble on --split test")
    windows, name = evaluation_windows(members[0], split, dataset, data_dir)
    classes = members[0].classes
    log_probs, rows, view_acc = [], [], []
    for m in members:
        out = evaluate_split(m.model, Split.from_windows(split, windows, dev), m.config.eval_batch_size,
                             autocast_factory(dev, m.config.amp, m.config.amp_dtype))
        log_probs.append(out["log_probs"])
        view_acc.append(out["view_acc"])
        rows.append({"path": str(m.path), **metric_record(out["y_true"].numpy(), out["y_pred"].numpy(), len(classes))})
    lp = mean_log_probs(log_probs)
    y_true = torch.from_numpy(windows.y)
    y_pred = lp.argmax(-1)
    first = targets[0] if targets else members[0].path
    base = Path(first) if Path(first).is_dir() else Path(first).parent
    json_path = Path(json_path) if json_path else base / f"evaluation_ensemble_{split}.json"
    result: dict[str, Any] = {
        "checkpoint": f"ensemble of {len(members)} runs",
        "epoch": 0,
        **metrics_record(y_true.numpy(), y_pred.numpy(), windows, classes, name, split),
        "loss": float(F.nll_loss(lp, y_true)),
        "view_accuracy": float(sum(view_acc) / len(view_acc)),
        "n_views": int(members[0].model.n_views),
        "members": rows,
        "device": str(dev),
        "time_s": round(time.perf_counter() - t0, 3),
        "json_path": str(json_path),
    }
    write_json(json_path, result)
    return result


def format_members(result: dict[str, Any]) -> str:
    """The members' lines of an ensemble evaluation printout."""
    lines = [f"ensemble of {len(result['members'])} runs (mean of window log-probabilities):"]
    lines += [f"  {r['path']}: " + ", ".join(f"{m.display} {r[m.name]:.4f}" for m in METRICS.values() if m.name in r)
              for r in result["members"]]
    return "\n".join(lines)
