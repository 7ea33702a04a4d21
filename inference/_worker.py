"""Work done inside Dask workers: one network per worker process, reused for every batch."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import torch
from rasterio.windows import Window

from geovigie.inference._source import RasterSource
from geovigie.models import ModelBundle, fill_values, forward, load_bundle, normalise, resolve_device

_LOCK = threading.Lock()
_NETWORKS: dict[tuple[str, str], tuple[ModelBundle, torch.nn.Module]] = {}


def cached_networks() -> int:
    """How many networks this process holds (one per bundle and device)."""
    return len(_NETWORKS)


def get_network(bundle_path: str, device: str, torch_threads: int | None = None) -> tuple[ModelBundle, torch.nn.Module]:
    """The worker's cached network for `bundle_path` on `device`, loaded on first use only."""
    key = (bundle_path, device)
    with _LOCK:
        if key not in _NETWORKS:
            if torch_threads:
                torch.set_num_threads(torch_threads)
            bundle = load_bundle(bundle_path)
            _NETWORKS[key] = (bundle, bundle.load_network(resolve_device(device)))
        return _NETWORKS[key]


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
    reads = source.read_windows([Window(*w) for w in windows], fill=fill_values(bundle.card))
    batch = normalise(bundle.card, np.stack([data for data, _ in reads]))
    masks = [valid for _, valid in reads]
    logits = forward(network, batch, next(network.parameters()).device, amp)
    return logits, np.stack(masks)
