"""The model runtime shared by training and inference: device, mixed precision, normalisation, forward pass.

A card means the same thing everywhere: raw band values `x` become `(x * scale - mean) / std` before the network.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from geovigie.errors import DeviceUnavailableError
from geovigie.models._card import ModelCard, Normalisation
from geovigie.types import DeviceName

PAD_MULTIPLE = 32
"""smp encoders of depth 5 need height and width divisible by 2**5."""


def resolve_device(name: DeviceName | str) -> torch.device:
    """`auto` -> cuda when available else cpu; `cuda` without a GPU is an error, not a silent fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if str(name).startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(f"device {name!r} requested but CUDA is not available; use device=cpu or auto")
        return torch.device(str(name))
    raise DeviceUnavailableError(f"unknown device {name!r}: use auto, cpu or cuda")


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager[None]:
    """float16 autocast on CUDA when `amp` is set; a no-op on CPU (training and inference alike)."""
    return torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp and device.type == "cuda")


@contextlib.contextmanager
def inference_context(device: torch.device, amp: bool) -> Iterator[None]:
    """No-grad inference, with float16 autocast on CUDA when `amp` is set."""
    with torch.inference_mode(), autocast(device, amp):
        yield


def _norm(card_or_norm: ModelCard | Normalisation) -> Normalisation:
    return card_or_norm.normalisation if isinstance(card_or_norm, ModelCard) else card_or_norm


def normalise(card: ModelCard | Normalisation, batch: np.ndarray) -> np.ndarray:
    """Apply the card's scale, mean and std to float32 (N, bands, H, W) or (bands, H, W), in place."""
    norm = _norm(card)
    shape = (-1, 1, 1)
    mean = np.asarray(norm.mean, dtype=np.float32).reshape(shape)
    std = np.asarray(norm.std, dtype=np.float32).reshape(shape)
    batch *= np.float32(norm.scale)
    batch -= mean
    batch /= std
    return batch


def fill_values(card: ModelCard | Normalisation) -> np.ndarray:
    """Raw values that normalise to 0: what invalid or out-of-raster pixels are replaced with."""
    norm = _norm(card)
    return np.asarray(norm.mean, dtype=np.float32) / np.float32(norm.scale)


def forward(network: torch.nn.Module, batch: np.ndarray, device: torch.device, amp: bool, *,
            channels_last: bool = False) -> np.ndarray:
    """Logits (N, classes, H, W) float32 for a normalised batch: H, W padded with zeros to a multiple of
    `PAD_MULTIPLE` and cropped back, float16 autocast on CUDA when `amp` (`autocast`), the input in channels-last
    memory format when `channels_last` (the network must be converted too). Training evaluation and every torch
    predictor run the network through here."""
    _, _, height, width = batch.shape
    pad_h, pad_w = (-height) % PAD_MULTIPLE, (-width) % PAD_MULTIPLE
    tensor = torch.from_numpy(batch).to(device, non_blocking=True)
    if pad_h or pad_w:
        tensor = torch.nn.functional.pad(tensor, (0, pad_w, 0, pad_h), mode="constant", value=0.0)
    if channels_last:
        tensor = tensor.contiguous(memory_format=torch.channels_last)
    with inference_context(device, amp):
        logits = network(tensor)
    return logits[:, :, :height, :width].float().contiguous().cpu().numpy()
