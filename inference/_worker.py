"""Work done inside Dask workers: one network per worker process, reused for every chunk.

A chunk is read once (with the halo its tiles need), cut into tiles in memory, predicted batch by batch and
blended on the worker; only finished uint8 cells and the thin float seams shared with neighbouring chunks go back.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import torch
from rasterio.windows import Window

from geovigie.inference._blend import finalise
from geovigie.inference._chunks import Chunk, Window4
from geovigie.inference._engine import EngineOptions, Predictor, build_predictor
from geovigie.inference._grid import blend_weights
from geovigie.inference._source import RasterSource
from geovigie.models import ModelBundle, fill_values, load_bundle, normalise, resolve_device

_LOCK = threading.Lock()
_NETWORKS: dict[tuple[str, str, bool, EngineOptions], tuple[ModelBundle, Predictor]] = {}


def cached_networks() -> int:
    """How many networks this process holds (one per bundle, device and engine)."""
    return len(_NETWORKS)


def get_predictor(bundle_path: str, device: str, amp: bool = True, engine: EngineOptions | None = None,
                  torch_threads: int | None = None) -> tuple[ModelBundle, Predictor]:
    """The worker's cached predictor for `bundle_path` on `device`, loaded on first use only."""
    engine = engine or EngineOptions()
    key = (bundle_path, device, amp, engine)
    with _LOCK:
        if key not in _NETWORKS:
            if torch_threads:
                torch.set_num_threads(torch_threads)
            bundle = load_bundle(bundle_path)
            _NETWORKS[key] = (bundle, build_predictor(bundle, resolve_device(device), amp, engine, torch_threads))
        return _NETWORKS[key]


@dataclass(frozen=True)
class ChunkJob:
    """What a worker needs besides the source and the chunk: bundle, device, engine, threads, input scaling."""

    bundle_path: str
    device: str
    amp: bool
    overlap: int
    batch_size: int
    engine: EngineOptions = EngineOptions()
    torch_threads: int | None = None
    input_scale: float = 1.0
    input_offset: float = 0.0


@dataclass
class ChunkResult:
    """Finished cells (window, classes (h, w), probabilities (C, h, w)) and seams (window, logit sum, weight sum,
    validity) of one chunk."""

    index: int
    tiles: int
    finished: list[tuple[Window4, np.ndarray, np.ndarray]]
    seams: list[tuple[Window4, np.ndarray, np.ndarray, np.ndarray]]
    seconds: dict[str, float]
    """Thread seconds spent reading, preparing (cut, convert, normalise), in the network, blending, finishing."""


def prepare_batch(bundle: ModelBundle, data: np.ndarray, valid: np.ndarray, job: ChunkJob) -> np.ndarray:
    """Raw (N, bands, H, W) values -> normalised float32 (in place when already float32): input scaling, invalid
    pixels filled."""
    batch = data if data.dtype == np.float32 else data.astype(np.float32)
    if job.input_scale != 1.0 or job.input_offset != 0.0:
        batch *= np.float32(job.input_scale)
        batch += np.float32(job.input_offset)
    invalid = ~valid
    if invalid.any():
        fill = fill_values(bundle.card)[None, :, None, None]
        np.copyto(batch, np.broadcast_to(fill, batch.shape), where=invalid[:, None])
    return normalise(bundle.card, batch)


def predict_chunk(source: RasterSource, chunk: Chunk, job: ChunkJob) -> ChunkResult:
    """Read the chunk's extent once, predict its tiles in batches, blend them, finish the cells it owns alone."""
    bundle, predictor = get_predictor(job.bundle_path, job.device, job.amp, job.engine, job.torch_threads)
    seconds = dict.fromkeys(("read", "prepare", "network", "blend", "finish"), 0.0)
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] += now - clock
        clock = now

    col0, row0, width, height = chunk.extent
    data, valid = source.read_native(Window(col0, row0, width, height))
    lap("read")
    th, tw = chunk.tile_height, chunk.tile_width
    weights = blend_weights(th, tw, job.overlap)
    logit_sum = np.zeros((bundle.card.num_classes, height, width), np.float32)
    weight_sum = np.zeros((height, width), np.float32)
    tiles = chunk.tiles
    for start in range(0, len(tiles), job.batch_size):
        batch = tiles[start : start + job.batch_size]
        cuts = [np.s_[r - row0 : r - row0 + th, c - col0 : c - col0 + tw] for r, c in batch]
        raw = np.empty((len(batch), data.shape[0], th, tw), np.float32)
        for i, cut in enumerate(cuts):
            raw[i] = data[(slice(None), *cut)]  # the one conversion to float32
        batch_in = prepare_batch(bundle, raw, np.stack([valid[cut] for cut in cuts]), job)
        lap("prepare")
        logits = predictor(batch_in)
        lap("network")
        for i, cut in enumerate(cuts):
            logit_sum[(slice(None), *cut)] += logits[i] * weights
            weight_sum[cut] += weights
        lap("blend")
    del data
    result = ChunkResult(chunk.index, len(tiles), [], [], seconds)
    for cell in chunk.cells:
        local = np.s_[cell.row - row0 : cell.row - row0 + cell.height, cell.col - col0 : cell.col - col0 + cell.width]
        if cell.owners == 1:
            classes, proba = finalise(logit_sum[(slice(None), *local)], weight_sum[local], valid[local], inplace=True)
            result.finished.append((cell.window, classes, proba))
        else:
            result.seams.append((cell.window, logit_sum[(slice(None), *local)].copy(), weight_sum[local].copy(),
                                 valid[local].copy()))
    lap("finish")
    return result
