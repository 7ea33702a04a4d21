"""Work done inside Dask workers: one network per worker process, reused for every batch."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import torch
from rasterio.windows import Window

from geovigie.inference._device import inference_context, resolve_device
from geovigie.inference._source import RasterSource
from geovigie.models import ModelBundle, load_bundle

_LOCK = threading.Lock()
_NETWORKS: dict[tuple[str, str], tuple[ModelBundle, torch.nn.Module]] = {}
LOADS = {"count": 0}
"""How many networks this process has loaded (tests check it is once per worker)."""


def get_network(bundle_path: str, device: str, torch_threads: int | None = None) -> tuple[ModelBundle, torch.nn.Module]:
    """The worker's cached network for `bundle_path` on `device`, loaded on first use only."""
    key = (bundle_path, device)
    with _LOCK:
        if key not in _NETWORKS:
            if torch_threads:
                torch.set_num_threads(torch_threads)
            bundle = load_bundle(bundle_path)
            _NETWORKS[key] = (bundle, bundle.load_network(resolve_device(device)))
            LOADS["count"] += 1
        return _NETWORKS[key]


def normalise(batch: np.ndarray, bundle: ModelBundle) -> np.ndarray:
    """Apply the card's scale, mean and std to (N, bands, H, W) float32, in place."""
    norm = bundle.card.normalisation
    mean = np.asarray(norm.mean, dtype=np.float32)[None, :, None, None]
    std = np.asarray(norm.std, dtype=np.float32)[None, :, None, None]
    batch *= norm.scale
    batch -= mean
    batch /= std
    return batch


def forward(network: torch.nn.Module, batch: np.ndarray, device: torch.device, amp: bool) -> np.ndarray:
    """Logits (N, classes, H, W) float32 for a normalised batch; pads H, W to a multiple of 32."""
    _, _, height, width = batch.shape
    pad_h, pad_w = (-height) % 32, (-width) % 32
    tensor = torch.from_numpy(batch).to(device, non_blocking=True)
    if pad_h or pad_w:
        tensor = torch.nn.functional.pad(tensor, (0, pad_w, 0, pad_h), mode="constant", value=0.0)
    with inference_context(device, amp):
        logits = network(tensor)
    return logits[:, :, :height, :width].float().cpu().numpy()


def fill_values(bundle: ModelBundle) -> np.ndarray:
    """Raw values that normalise to 0: what invalid or out-of-raster pixels are replaced with."""
    norm = bundle.card.normalisation
    return np.asarray(norm.mean, dtype=np.float32) / norm.scale


def predict_windows(
    source: RasterSource,
    windows: Sequence[tuple[int, int, int, int]],
    bundle_path: str,
    device: str,
    amp: bool,
    torch_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read, normalise and predict a batch of windows (col, row, width, height) of equal size.

    Returns:
        logits (N, classes, H, W) float32 and validity masks (N, H, W) bool.
    """
    bundle, network = get_network(bundle_path, device, torch_threads)
    fill = fill_values(bundle)
    reads = source.read_windows([Window(*w) for w in windows], fill=fill)
    batch = normalise(np.stack([data for data, _ in reads]), bundle)
    masks = [valid for _, valid in reads]
    logits = forward(network, batch, next(network.parameters()).device, amp)
    return logits, np.stack(masks)
