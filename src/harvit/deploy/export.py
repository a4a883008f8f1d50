"""Export a trained model to ONNX, verified against PyTorch with onnxruntime.

Two graphs (both with a dynamic batch axis ``batch``):

``window`` (default)
    ``signals`` float32 [B, C, T] (the preprocessed channels of a window, in g and rad/s, as
    :func:`harvit.data.signals.preprocess_inertial` + :func:`~harvit.data.signals.sliding_windows`
    make them) -> ``log_probs`` float32 [B, K]. Scaling, view grouping, every image encoding (MTF
    included), the encoder, the head and the mean over views are inside the graph.
``images``
    ``images`` float32 [N, in_chans, S, S] (one view each, as
    :meth:`harvit.imaging.imager.SignalImager.all_views` makes them) -> ``logits`` float32 [N, K]. A window's
    log-probabilities are the mean over its V views of ``log_softmax(logits)``.

Models trained with ``window_stats`` read per-window statistics beside the images. The ``window``
graph computes them from the signals inside the graph (:mod:`harvit.features.statistics` is plain
torch), so it takes the window alone. The ``images`` graph cannot (images do not hold the signals):
it takes a second input ``window_statistics`` float32 [N, F], the *raw* output of
``harvit.features.statistics.window_statistics(windows, channels)``, one row per image (each window's
row repeated for its V views), and standardises it with the training mean/std (also in the sidecar).

Next to ``model.onnx`` a ``model.onnx.json`` sidecar records the inputs and outputs, classes,
channels, rates, window length, image settings, the scaler's fitted range and the statistics'
mean/std, so a deployment can rebuild the preprocessing.

Every write is atomic: the graph is exported to a temporary file in the target folder, checked
(``onnx.checker``, then onnxruntime vs PyTorch on random input within 1e-4), then ``os.replace``d.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from harvit.data.options import OwnOptions
from harvit.data.registry import is_builtin
from harvit.data.signals import DEFAULT_PREPROCESSING
from harvit.features.rocket import SideFeatures
from harvit.models.classifier import WindowClassifier
from harvit.models.ensemble import EnsembleClassifier, load_ensemble
from harvit.models.loading import TrainedModel, load_trained
from harvit.utils.atomic import atomic_path, write_json
from harvit.utils.errors import HarvitError

WHATS = ("window", "images")
OPSET = 18
#: max |onnxruntime - PyTorch| allowed on the verification input
TOLERANCE = 1e-4
DEFAULT_NAMES = {"window": "model.onnx", "images": "model_images.onnx"}


class WindowGraph(nn.Module):
    """signals [B, C, T] -> window log-probabilities [B, K]: the whole :class:`WindowClassifier`."""

    def __init__(self, model: WindowClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, signals: Tensor) -> Tensor:
        return self.model(signals)


class ImagesGraph(nn.Module):
    """images [N, in_chans, S, S] (+ raw window_statistics [N, F]) -> logits [N, K]."""

    def __init__(self, model: WindowClassifier) -> None:
        super().__init__()
        self.net = model.net
        self.stats = model.stats

    def forward(self, images: Tensor, window_statistics: Tensor | None = None) -> Tensor:
        stats = self.stats.standardise(window_statistics) if self.stats is not None else None
        return self.net(images, stats)


def _require_onnx() -> tuple[Any, Any]:
    try:
        import onnx
        import onnxruntime
    except ImportError as e:
        raise HarvitError(f"export needs onnx and onnxruntime ({e.name} is missing): "
                          "pip install 'harvit[export]'") from None
    return onnx, onnxruntime


def example_inputs(trained: TrainedModel, what: str, batch: int, seed: int = 0) -> dict[str, Tensor]:
    """Plausible random inputs of the graph ``what`` (name -> CPU float32 tensor)."""
    model = trained.model
    gen = torch.Generator().manual_seed(seed)
    scaler = model.imager.scaler
    c, t = len(trained.channels), trained.window_length
    lo, hi = scaler.lo.float().cpu()[:, None], scaler.hi.float().cpu()[:, None]
    signals = lo + (hi - lo) * torch.rand(batch, c, t, generator=gen)  # spans the fitted range
    inputs: dict[str, Tensor] = {}
    if what == "window":
        inputs["signals"] = signals
        n = batch
    else:
        with torch.no_grad():
            inputs["images"] = model.imager.all_views(signals.to(scaler.lo.device)).float().cpu()
        n = batch * model.n_views
    if model.stats is not None and what == "images":
        mean, std = model.stats.mean.float().cpu(), model.stats.std.float().cpu()
        inputs["window_statistics"] = mean + std * torch.randn(n, mean.numel(), generator=gen)
    return inputs


def _graph(trained: TrainedModel, what: str) -> nn.Module:
    if what not in WHATS:
        raise HarvitError(f"--what: unknown value {what!r}; expected one of {', '.join(WHATS)}")
    if what == "images" and isinstance(trained.model, EnsembleClassifier):
        raise HarvitError("--what images: an ensemble exports as one window graph (each member makes its own "
                          "images inside); export --what window")
    if what == "images" and isinstance(trained.model.stats, SideFeatures):
        raise HarvitError("--what images: this model computes random-convolution features from the signals, "
                          "which images do not hold; export --what window (the whole model, features inside)")
    graph = WindowGraph(trained.model) if what == "window" else ImagesGraph(trained.model)
    return graph.cpu().eval()


def _torch_export(graph: nn.Module, inputs: dict[str, Tensor], output: str, path: str) -> str:
    """Export with the TorchScript exporter (dynamo=False); fall back to the dynamo exporter when
    onnxscript is installed. Returns the exporter used."""
    names = list(inputs)
    dynamic = {n: {0: "batch"} for n in [*names, output]}
    args = tuple(inputs.values())
    errors = []
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(graph, args, path, dynamo=False, opset_version=OPSET, input_names=names,
                              output_names=[output], dynamic_axes=dynamic, do_constant_folding=True)
        return "torchscript"
    except Exception as e:  # noqa: BLE001 - any exporter failure becomes one message below
        errors.append(f"TorchScript exporter: {_first_line(e)}")
    if importlib.util.find_spec("onnxscript") is not None:
        try:
            batch = getattr(torch.export.Dim, "DYNAMIC", None) or torch.export.Dim("batch")
            shapes = tuple({0: batch} for _ in names)
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                program = torch.onnx.export(graph, args, dynamo=True, opset_version=OPSET, input_names=names,
                                            output_names=[output], dynamic_shapes=shapes)
                program.save(path)
            return "dynamo"
        except Exception as e:  # noqa: BLE001
            errors.append(f"dynamo exporter: {_first_line(e)}")
    else:
        errors.append("dynamo exporter: not tried (onnxscript is not installed)")
    raise HarvitError("could not export to ONNX: " + "; ".join(errors))


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:300]}" if text else type(e).__name__


def verify(path: str, graph: nn.Module, inputs: dict[str, Tensor]) -> float:
    """Run the ONNX file with onnxruntime and PyTorch on ``inputs``; returns max |difference|.

    Raises :class:`HarvitError` when the outputs differ by more than :data:`TOLERANCE` or are not finite.
    """
    onnx, ort = _require_onnx()
    try:
        onnx.checker.check_model(path)
    except Exception as e:  # noqa: BLE001
        raise HarvitError(f"the exported graph fails onnx.checker: {_first_line(e)}") from None
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        got = session.run(None, {k: v.numpy() for k, v in inputs.items()})[0]
    except Exception as e:  # noqa: BLE001
        raise HarvitError(f"onnxruntime cannot run the exported graph: {_first_line(e)}") from None
    with torch.no_grad():
        want = graph(*inputs.values()).float().numpy()
    if got.shape != want.shape:
        raise HarvitError(f"ONNX output has shape {list(got.shape)}, PyTorch {list(want.shape)}; not written")
    if not np.isfinite(got).all():
        raise HarvitError("ONNX output holds NaN/Inf on the verification input; not written")
    diff = float(np.abs(got.astype(np.float64) - want).max())
    if not diff <= TOLERANCE:
        raise HarvitError(f"ONNX output differs from PyTorch by {diff:.2e} (> {TOLERANCE:g}) on random input; "
                          "the graph is not written")
    return diff


def sidecar(trained: TrainedModel, what: str, onnx_path: Path, exporter: str, diff: float) -> dict[str, Any]:
    """What a deployment needs to feed the graph: inputs, classes, preprocessing, fitted constants."""
    model, cfg = trained.model, trained.config
    imager, stats = model.imager, model.stats
    rocket = stats.rocket if isinstance(stats, SideFeatures) else None
    if isinstance(stats, SideFeatures):
        stats = stats.stats  # the window statistics part (None when off)
    k, c, t, s = len(trained.classes), len(trained.channels), trained.window_length, imager.img_size
    f = stats.n_features if stats is not None else 0
    if what == "window":
        inputs = [dict(name="signals", shape=["batch", c, t], dtype="float32",
                       meaning="preprocessed windows in channel order `channels`, in the training data's units, "
                               "made as `preprocessing` says")]
        outputs = [dict(name="log_probs", shape=["batch", k], dtype="float32",
                        meaning="window log-probabilities (mean over views of log_softmax)")]
        rows = "window"
    else:
        inputs = [dict(name="images", shape=["batch", imager.in_chans, s, s], dtype="float32",
                       meaning="one view image per row, as harvit.imaging.imager.SignalImager.all_views makes them "
                               "(window-major: row w*n_views + v is window w, view v)")]
        outputs = [dict(name="logits", shape=["batch", k], dtype="float32",
                        meaning="per-image logits; a window's log-probs = mean over its views of log_softmax")]
        rows = "image (each window's row repeated for its n_views views)"
    if stats is not None and what == "images":
        inputs.append(dict(name="window_statistics", shape=["batch", f], dtype="float32",
                           meaning=f"raw window statistics, one row per {rows}: harvit.features.statistics."
                                   "window_statistics(windows, channels); standardised inside the graph with "
                                   "window_stats.mean/std and clipped to +-10"))
    scaler = imager.scaler
    return {
        "format": "harvit-onnx", "version": 1, "onnx": onnx_path.name, "what": what,
        "opset": OPSET, "exporter": exporter, "inputs": inputs, "outputs": outputs,
        "classes": list(trained.classes), "channels": list(trained.channels),
        "rate_hz": trained.rate_hz, "window_length": t, "stride": _preprocessing(trained, t)["stride"],
        "img_size": s, "encodings": list(imager.encodings), "mode": imager.mode, "n_views": imager.n_views,
        "views": [[trained.channels[i] for i in g] for g in imager.groups], "in_chans": imager.in_chans,
        "encoding_settings": imager.settings, "encoder": cfg.encoder,
        "scaler": {"mode": scaler.mode, "out_range": scaler.out_range,
                   "lo": scaler.lo.float().cpu().tolist(), "hi": scaler.hi.float().cpu().tolist()},
        "window_stats": None if stats is None else {
            "n_features": f, "clip": 10.0,
            "mean": stats.mean.float().cpu().tolist(), "std": stats.std.float().cpu().tolist(),
            "compute": ("inside the graph" if what == "window" else
                        "harvit.features.statistics.window_statistics(windows [B, C, T], channels) -> raw [B, F]")
                       + "; standardised = clip((raw - mean) / std, -10, 10)"},
        "rocket_features": None if rocket is None else {
            "n_features": rocket.n_features, "dilations": rocket.dilations, "per_dilation": rocket.per_dilation,
            "compute": "inside the graph (harvit.features.rocket.RocketFeatures), after the window statistics"},
        "preprocessing": _preprocessing(trained, t),
        "checkpoint": str(trained.path),
        "ensemble": None if not isinstance(model, EnsembleClassifier) else {
            "members": len(model.members), "combine": "log_softmax(mean over members of window log_probs)"},
        "verified": {"runtime": "onnxruntime", "max_abs_diff": diff,
                                                      "tolerance": TOLERANCE},
    }


def _preprocessing(trained: TrainedModel, t: int) -> dict[str, Any]:
    """How windows are made for the graph: HAPT's recipe for the built-in data sets, else the run's own-data
    options (a table's columns, rate, --lowpass, --gravity-split, --overlap; ready windows as they are)."""
    cfg = trained.config
    if is_builtin(cfg.dataset):
        return {**DEFAULT_PREPROCESSING.as_dict(), "window": t, "stride": max(1, t // 2),
                "recipe": "acc (g) + gyro (rad/s) at rate_hz -> harvit.data.signals.preprocess_inertial "
                          "-> sliding_windows(window, stride)"}
    opts = OwnOptions.from_settings(cfg.to_dict())
    stride = max(1, int(round(t * (1 - opts.overlap))))
    return {"own_data": opts.as_dict(), "window": t, "stride": stride,
            "recipe": "the training table's columns at rate_hz -> harvit.data.signals.prepare_channels(lowpass, "
                      "gravity_split) -> windows of `window` samples every `stride` (harvit predict RUN --table "
                      "FILE does all of it); ready windows (.npz, .ts): as in the training file"}


def export_onnx(trained: TrainedModel, out: str | Path, what: str = "window") -> dict[str, Any]:
    """Export ``trained`` (on any device; exported from a CPU copy) as ONNX graph ``what`` to ``out``.

    Writes ``out`` and ``<out>.json`` atomically; returns the sidecar dict.
    """
    _require_onnx()
    graph = _graph(trained, what)
    if next(trained.model.parameters()).device.type != "cpu":
        trained.model.cpu()
    out = Path(out)
    if out.is_dir():
        out = out / DEFAULT_NAMES[what]
    output = "log_probs" if what == "window" else "logits"
    with atomic_path(out) as tmp:  # the usual file mode, like the sidecar's; replaced only once verified
        exporter = _torch_export(graph, example_inputs(trained, what, batch=2, seed=0), output, str(tmp))
        diff = verify(str(tmp), graph, example_inputs(trained, what, batch=1, seed=1))  # another batch size
        info = sidecar(trained, what, out, exporter, diff)
    write_json(Path(f"{out}.json"), info)
    return info


def export_command(checkpoint: str | Path | None, out: str | Path | None = None, what: str = "window",
                   ensemble: list[str | Path] | None = None) -> str:
    """``harvit export``: returns the text to print.

    With ``ensemble`` (run folders, checkpoints or a cv parent folder; ``checkpoint`` joins them) one
    ``window`` graph holds every member and outputs the log-softmax of their mean log-probabilities;
    its size is the members' sizes summed (a 5-fold ensemble of the ``cpu`` preset: about 5 x 2 MB).
    """
    if what not in WHATS:
        raise HarvitError(f"--what: unknown value {what!r}; expected one of {', '.join(WHATS)}")
    if ensemble:
        trained = load_ensemble(([checkpoint] if checkpoint else []) + list(ensemble), "cpu")
    elif checkpoint:
        trained = load_trained(checkpoint, "cpu")
    else:
        raise HarvitError("harvit export: expected a run folder or checkpoint file, or --ensemble RUN [RUN ...]")
    if out is None and ensemble:  # beside the ensemble, never over a member's own model.onnx
        first = Path(checkpoint or ensemble[0])
        out = (first if first.is_dir() else first.parent) / "model_ensemble.onnx"
    elif out is None:
        out = trained.path.parent / DEFAULT_NAMES[what]
    info = export_onnx(trained, out, what)
    out = Path(out) / DEFAULT_NAMES[what] if Path(out).is_dir() else Path(out)
    ins = ", ".join(f"{i['name']} {i['shape']}" for i in info["inputs"])
    outs = ", ".join(f"{o['name']} {o['shape']}" for o in info["outputs"])
    lines = [f"exported {out} ({what}; {info['exporter']} exporter, opset {OPSET}, "
             f"{out.stat().st_size / 1e6:.1f} MB)",
             f"inputs: {ins}", f"outputs: {outs}",
             f"verified with onnxruntime: max |diff| {info['verified']['max_abs_diff']:.1e} (<= {TOLERANCE:g})",
             f"sidecar: {out}.json"]
    if info["window_stats"] is not None and what == "images":
        lines.append("note: this model reads window statistics; feed window_statistics = "
                     "harvit.features.statistics.window_statistics(windows, channels) (raw; the graph "
                     "standardises them)")
    return "\n".join(lines)
