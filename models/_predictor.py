"""The one way to run a bundle: PyTorch or ONNX Runtime (or `auto`), loaded once, calibrated by the card.

A predictor takes a normalised float32 batch (B, bands, H, W) (see `normalise`) of any height and width, pads it to
the network's multiple (`PAD_MULTIPLE`), and returns float32 logits (B, classes, H, W). When the card has a
calibration and `calibrated` is set (the default), the logits are divided by its temperature: softmax of them gives
calibrated probabilities, argmax is unchanged, and since the division is linear, blending tiles before or after it
gives the same result. Mixed precision is decided once, by `autocast` (float16 on CUDA when `amp`). Inference
workers, the model commands and the benchmarks all load their network here.
"""

from __future__ import annotations

import importlib.util
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from geovigie.digests import sha256_of
from geovigie.errors import BundleError, DeviceUnavailableError, InvalidInputError
from geovigie.models._bundle import ModelBundle, load_bundle
from geovigie.models._calibration import softmax
from geovigie.models._runtime import PAD_MULTIPLE, forward, resolve_device

Runtime = Literal["auto", "torch", "onnx"]
RUNTIMES: tuple[str, ...] = ("auto", "torch", "onnx")


def resolve_runtime(runtime: str, bundle: ModelBundle) -> str:
    """`auto`: ONNX Runtime when the bundle has an ONNX export and onnxruntime is installed (2.8 times the torch
    throughput on 2 CPU cores, BENCHMARKS.md), else torch; `torch` and `onnx` as they are.

    Raises:
        InvalidInputError: an unknown runtime.
    """
    if runtime not in RUNTIMES:
        raise InvalidInputError(f"unknown runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")
    if runtime != "auto":
        return runtime
    has_export = bundle.card.onnx is not None
    return "onnx" if has_export and importlib.util.find_spec("onnxruntime") is not None else "torch"


class Predictor(ABC):
    """A loaded network of `bundle`: call it with a normalised batch to get logits."""

    runtime: str

    def __init__(self, bundle: ModelBundle, device: str, calibrated: bool) -> None:
        self.bundle = bundle
        self.device = device
        self.temperature = bundle.card.temperature if calibrated else 1.0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Logits (B, classes, H, W) float32 of a normalised batch (B, bands, H, W), divided by the temperature."""
        batch = np.asarray(batch)
        bands = self.bundle.card.channels
        if batch.ndim != 4 or batch.shape[1] != bands:
            raise InvalidInputError(f"a batch of shape (B, {bands}, H, W) is expected by {self.bundle.id}, "
                                    f"got {batch.shape}")
        logits = self._run(np.ascontiguousarray(batch, dtype=np.float32))
        if self.temperature != 1.0:
            logits /= np.float32(self.temperature)
        return logits

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Softmax over classes of `self(batch)`: calibrated probabilities when the predictor is calibrated."""
        return softmax(self(batch), inplace=True)

    @abstractmethod
    def _run(self, batch: np.ndarray) -> np.ndarray:
        """Raw logits of a float32 batch."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.bundle.id} on {self.device}, T={self.temperature:.4g}>"


class TorchPredictor(Predictor):
    """The PyTorch network: float16 autocast on CUDA when `amp`, optionally in channels-last memory format or with
    int8 dynamic quantisation (Linear layers, CPU only). `verified`: the weights' SHA-256 was checked already in
    this run (`check_weights`), so loading does not hash them again."""

    runtime = "torch"

    def __init__(self, bundle: ModelBundle, device: str = "auto", *, amp: bool = True, calibrated: bool = True,
                 threads: int | None = None, channels_last: bool = False, quantise: bool = False,
                 verified: bool = False) -> None:
        torch_device = resolve_device(device)
        super().__init__(bundle, str(torch_device), calibrated)
        if threads:
            torch.set_num_threads(threads)
        self.torch_device = torch_device
        self.amp = amp
        self.channels_last = channels_last
        network = bundle.load_network(torch_device, verified=verified)
        if quantise and torch_device.type == "cpu":  # dynamic int8 exists for Linear layers only
            network = torch.ao.quantization.quantize_dynamic(network, {torch.nn.Linear}, dtype=torch.qint8)
        if channels_last:
            network = network.to(memory_format=torch.channels_last)
        self.network = network

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return forward(self.network, batch, self.torch_device, self.amp, channels_last=self.channels_last)


class OnnxPredictor(Predictor):
    """The bundle's ONNX export run by ONNX Runtime (CUDA provider when asked for and installed, else CPU)."""

    runtime = "onnx"

    def __init__(self, bundle: ModelBundle, device: str = "auto", *, calibrated: bool = True,
                 threads: int | None = None, verified: bool = False) -> None:
        ort = _onnxruntime()

        path = bundle.path / bundle.card.onnx.file if verified and bundle.card.onnx is not None else _check_onnx(bundle)
        providers = _onnx_providers(device)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session: Any = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as err:  # onnxruntime raises its own untyped errors for unreadable models
            raise BundleError(f"{path}: ONNX Runtime cannot load the model ({err})") from err
        used = self.session.get_providers()[0]
        super().__init__(bundle, "cuda" if used == "CUDAExecutionProvider" else "cpu", calibrated)
        self.input_name = self.session.get_inputs()[0].name

    def _run(self, batch: np.ndarray) -> np.ndarray:
        _, _, height, width = batch.shape
        pad_h, pad_w = (-height) % PAD_MULTIPLE, (-width) % PAD_MULTIPLE
        if pad_h or pad_w:  # zeros, as `forward` pads
            batch = np.pad(batch, ((0, 0), (0, 0), (0, pad_h), (0, pad_w)))
        (logits,) = self.session.run(None, {self.input_name: batch})
        return np.ascontiguousarray(logits[:, :, :height, :width], dtype=np.float32)


EXPORT_HINT = "`geovigie model export-onnx BUNDLE`"


def _onnxruntime() -> Any:
    """onnxruntime, imported with its telemetry off: otherwise it writes a device id and a database under
    ~/.cache/Microsoft on every machine that runs a prediction."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime

    return onnxruntime


def _check_onnx(bundle: ModelBundle) -> Path:
    """The bundle's ONNX file, after checking the card names one, it exists, matches its hash and the weights."""
    card = bundle.card
    if card.onnx is None:
        raise BundleError(f"{bundle.path}: bundle {bundle.id} has no ONNX export; run "
                          f"`geovigie model export-onnx {bundle.path}` or use runtime 'torch'")
    path = bundle.path / card.onnx.file
    if not path.exists():
        raise BundleError(f"{path}: the ONNX file the card names is missing; export it again ({EXPORT_HINT})")
    digest = sha256_of(path)
    if digest != card.onnx.sha256:
        raise BundleError(f"{path}: SHA-256 {digest[:12]}… differs from the card's {card.onnx.sha256[:12]}…; "
                          f"the file is corrupt or not this card's: export it again ({EXPORT_HINT})")
    if card.onnx.weights_sha256 and card.onnx.weights_sha256 != card.weights_sha256:
        raise BundleError(f"{path}: exported from other weights than the bundle's; export it again ({EXPORT_HINT})")
    return path


def _onnx_providers(device: str) -> list[Any]:
    """ONNX Runtime execution providers for `device`; CUDA only with onnxruntime-gpu."""
    ort = _onnxruntime()

    available = ort.get_available_providers()
    if device == "auto":
        return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if str(device).startswith("cuda"):
        if "CUDAExecutionProvider" not in available:
            raise DeviceUnavailableError(f"device {device!r} with runtime 'onnx' needs onnxruntime-gpu (CUDA "
                                         f"provider); this onnxruntime has {available}: use device=cpu")
        index = str(device).partition(":")[2] or "0"
        return [("CUDAExecutionProvider", {"device_id": int(index)}), "CPUExecutionProvider"]
    raise DeviceUnavailableError(f"unknown device {device!r}: use auto, cpu or cuda")


def check_runtime(bundle: ModelBundle, runtime: Runtime | str = "torch", device: str = "auto") -> str:
    """Fail early, without loading any network, when `bundle` cannot run with `runtime` on `device` here; check the
    files the runtime reads (the ONNX export's SHA-256) so that workers need not check them again.

    Returns:
        The runtime, `auto` resolved.

    Raises:
        InvalidInputError: unknown runtime.
        BundleError: (onnx) no export in the bundle, a missing, corrupt or stale export.
        DeviceUnavailableError: the device is unusable with this runtime here.
    """
    runtime = resolve_runtime(runtime, bundle)
    if runtime == "onnx":
        _check_onnx(bundle)
        _onnx_providers(device)
    else:
        if bundle.card.kind != "network":
            raise BundleError(f"{bundle.path}: bundle {bundle.id} is a {bundle.card.kind} (an ONNX model, no PyTorch "
                              "network): use runtime onnx or auto")
        resolve_device(device)
    return runtime


def load_predictor(bundle_or_path: ModelBundle | str | Path | None = None, device: str = "auto",
                   runtime: Runtime | str = "torch", *, amp: bool = True, calibrated: bool = True,
                   threads: int | None = None, channels_last: bool = False, quantise: bool = False,
                   verified: bool = False) -> Predictor:
    """Load a bundle's network once for `runtime` (torch, onnx or auto) on `device` (auto, cpu, cuda[:n]).

    Args:
        bundle_or_path: a bundle, its folder, or None for the shipped land-cover bundle.
        amp: float16 autocast on CUDA (torch runtime only).
        calibrated: divide the logits by the card's temperature (when it has one).
        threads: CPU threads of the runtime (None: its default).
        channels_last, quantise: torch's channels-last memory format, int8 dynamic quantisation (CPU).
        verified: the bundle's files were checked in this run already (`check_weights`, `check_runtime`): do not
            hash them again (what inference workers do: the client checked them once for the run).

    Raises:
        InvalidInputError: unknown runtime.
        BundleError: corrupt weights, or (onnx) no export, a corrupt or stale export.
        DeviceUnavailableError: the device cannot be used with this runtime here.
    """
    bundle = bundle_or_path if isinstance(bundle_or_path, ModelBundle) else load_bundle(bundle_or_path)
    if resolve_runtime(runtime, bundle) == "onnx":
        return OnnxPredictor(bundle, device, calibrated=calibrated, threads=threads, verified=verified)
    return TorchPredictor(bundle, device, amp=amp, calibrated=calibrated, threads=threads,
                          channels_last=channels_last, quantise=quantise, verified=verified)
