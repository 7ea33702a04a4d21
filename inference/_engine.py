"""How a worker runs the network on CPU or GPU: torch (optionally channels-last, int8-quantised) or ONNX Runtime.

Measured on 2 CPU cores (BENCHMARKS.md): the default is the one the numbers chose.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from geovigie.errors import InvalidInputError
from geovigie.models import ModelBundle, forward

RUNTIMES = ("auto", "torch", "onnx")
PAD_MULTIPLE = 32
"""smp encoders of depth 5 need sides divisible by 2**5 (as `geovigie.models.forward` pads)."""

Predictor = Callable[[np.ndarray], np.ndarray]
"""Normalised float32 (N, bands, H, W) -> logits float32 (N, classes, H, W)."""


@dataclass(frozen=True)
class EngineOptions:
    """The runtime (torch or onnx), channels-last memory format and int8 dynamic quantisation (torch on CPU)."""

    runtime: str = "auto"
    channels_last: bool = False
    quantise: bool = False

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise InvalidInputError(f"runtime {self.runtime!r} unknown: use one of {', '.join(RUNTIMES)}")


def resolve_runtime(runtime: str, bundle: ModelBundle) -> str:
    """`auto`: ONNX Runtime when the bundle has an ONNX export and onnxruntime is installed (2.8 times the torch
    throughput on 2 CPU cores, BENCHMARKS.md), else torch; other names as they are."""
    if runtime != "auto":
        return runtime
    import importlib.util

    has_export = getattr(bundle.card, "onnx", None) is not None
    return "onnx" if has_export and importlib.util.find_spec("onnxruntime") is not None else "torch"


def build_predictor(bundle: ModelBundle, device: torch.device, amp: bool, engine: EngineOptions,
                    threads: int | None = None) -> Predictor:
    """A callable running `bundle`'s network on normalised batches, as `engine` says (`threads`: ONNX Runtime's
    intra-op threads; torch's are set per process). Logits are divided by the card's calibration temperature (once,
    for every runtime): blending is linear, so the softmax of the blended logits gives calibrated probabilities,
    and the class map is unchanged."""
    raw = _uncalibrated(bundle, device, amp, engine, threads)
    temperature = np.float32(bundle.card.temperature)
    if temperature == 1:
        return raw
    return lambda batch: raw(batch) / temperature


def _uncalibrated(bundle: ModelBundle, device: torch.device, amp: bool, engine: EngineOptions,
                  threads: int | None) -> Predictor:
    if resolve_runtime(engine.runtime, bundle) == "onnx":
        return _onnx_predictor(bundle, device, threads)
    network = bundle.load_network(device)
    if engine.quantise and device.type == "cpu":  # dynamic int8 exists for Linear layers only
        network = torch.ao.quantization.quantize_dynamic(network, {torch.nn.Linear}, dtype=torch.qint8)
    if not engine.channels_last:
        return lambda batch: forward(network, batch, device, amp)
    network = network.to(memory_format=torch.channels_last)

    def channels_last(batch: np.ndarray) -> np.ndarray:
        _, _, height, width = batch.shape
        pad_h, pad_w = (-height) % PAD_MULTIPLE, (-width) % PAD_MULTIPLE
        tensor = torch.from_numpy(batch).to(device)
        if pad_h or pad_w:
            tensor = torch.nn.functional.pad(tensor, (0, pad_w, 0, pad_h))
        with torch.inference_mode(), torch.autocast(device.type, torch.float16, enabled=amp and device.type == "cuda"):
            logits = network(tensor.contiguous(memory_format=torch.channels_last))
        return logits[:, :, :height, :width].float().contiguous().cpu().numpy()

    return channels_last


def _onnx_predictor(bundle: ModelBundle, device: torch.device, threads: int | None) -> Predictor:
    """ONNX Runtime through `geovigie.models.load_predictor`; uncalibrated logits, as the torch path gives.

    Raises:
        BundleError: the bundle has no (or a stale) ONNX export: `geovigie.models.export_onnx` makes one.
    """
    from geovigie.models import load_predictor

    return load_predictor(bundle, str(device), runtime="onnx", calibrated=False, threads=threads)
