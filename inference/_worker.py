"""Work done inside Dask workers: one network per worker process, loaded by a worker plugin and reused for every chunk.

A chunk is read once (with the halo its tiles need), cut into tiles in memory, predicted batch by batch and
blended on the worker, which writes its finished block and the weighted logit sums of the seams it shares into the
run's journal (`_journal`); a seam cell is finished, also on a worker, once every chunk around it is done. Only small
reports go back to the client.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from distributed.diagnostics.plugin import WorkerPlugin
from rasterio.windows import Window

from geovigie.inference._blend import finalise
from geovigie.inference._chunks import Chunk, Window4
from geovigie.inference._grid import blend_weights
from geovigie.inference._journal import RunJournal
from geovigie.inference._source import RasterSource
from geovigie.models import (
    BandMaps,
    ModelBundle,
    Predictor,
    apply_band_maps,
    load_bundle,
    load_predictor,
    resolve_device,
)

_LOCK = threading.Lock()
_NETWORKS: dict[tuple[object, ...], tuple[ModelBundle, Predictor]] = {}


def cached_networks() -> int:
    """How many networks this process holds (one per bundle, device and runtime options)."""
    return len(_NETWORKS)


@dataclass(frozen=True)
class ChunkJob:
    """What a worker needs besides the source and the chunk: bundle, device, runtime, threads, input scaling.

    `runtime` is resolved (torch or onnx) and the bundle's files were checked by the client for this run
    (`weights_sha256` is the digest it verified): workers load them without hashing them again.
    """

    bundle_path: str
    device: str
    amp: bool
    overlap: int
    batch_size: int
    runtime: str = "torch"
    channels_last: bool = False
    quantise: bool = False
    torch_threads: int | None = None
    input_scale: float = 1.0
    input_offset: float = 0.0
    weights_sha256: str = ""
    scene_maps: BandMaps | None = None
    """The card's per-scene mapping of this input (whole-raster statistics, `inference/_scene.py`), or None."""

    def load(self) -> tuple[ModelBundle, Predictor]:
        """This process's predictor for the job (loaded once per process)."""
        key = (self.bundle_path, self.device, self.amp, self.runtime, self.channels_last, self.quantise,
               self.torch_threads, self.weights_sha256)
        with _LOCK:
            if key not in _NETWORKS:
                bundle = load_bundle(self.bundle_path)
                # the digest the client verified: the same weights need no second hash here
                verified = bool(self.weights_sha256) and self.weights_sha256 == bundle.card.weights_sha256
                _NETWORKS[key] = (bundle, load_predictor(
                    bundle, str(resolve_device(self.device)), self.runtime, amp=self.amp,
                    threads=self.torch_threads, channels_last=self.channels_last, quantise=self.quantise,
                    verified=verified))
            return _NETWORKS[key]


class PredictorPlugin(WorkerPlugin):
    """A Dask worker plugin loading the job's network when a worker starts or joins (a worker replacing a lost one
    too), so that no chunk pays for it; registered under a name per job, once per cluster (idempotent)."""

    idempotent = True

    def __init__(self, job: ChunkJob) -> None:
        self.job = job
        self.name = "geovigie-predictor-" + hashlib.sha256(repr(job).encode()).hexdigest()[:12]

    async def setup(self, worker: object) -> None:
        """Load the network off the worker's event loop."""
        await asyncio.to_thread(self.job.load)


@dataclass(frozen=True)
class ChunkReport:
    """What a chunk task returns: tiles predicted, whether its block file already existed, thread seconds by stage
    (read, prepare, network, blend, finish, write)."""

    index: int
    tiles: int
    reused: bool
    seconds: dict[str, float] = field(default_factory=dict)


def _input_affine(bundle: ModelBundle, job: ChunkJob) -> tuple[np.ndarray, np.ndarray]:
    """Per band (gain, bias) with gain * raw + bias = the normalised input: the job's input scaling and the card's
    normalisation in one multiply-add (float32, (bands, 1, 1))."""
    norm = bundle.card.normalisation
    scale, std = np.float64(norm.scale), np.asarray(norm.std, np.float64)
    # with a scene mapping, the chunk is already scaled and mapped (`predict_chunk`)
    input_scale, input_offset = (1.0, 0.0) if job.scene_maps is not None else (job.input_scale, job.input_offset)
    gain = input_scale * scale / std
    bias = (input_offset * scale - np.asarray(norm.mean, np.float64)) / std
    return gain.astype(np.float32)[:, None, None], bias.astype(np.float32)[:, None, None]


def predict_chunk(source: RasterSource, chunk: Chunk, job: ChunkJob, journal: RunJournal) -> ChunkReport:
    """Read the chunk's extent once, predict its tiles in batches, blend them, write its block and seam sums.

    Does nothing when the chunk's file exists (an earlier run, or a worker lost after writing it).
    """
    if journal.chunk(chunk.index).exists():
        return ChunkReport(chunk.index, len(chunk.tiles), True)
    bundle, predictor = job.load()
    seconds = dict.fromkeys(("read", "prepare", "network", "blend", "finish", "write"), 0.0)
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] += now - clock
        clock = now

    col0, row0, width, height = chunk.extent
    data, valid = source.read_native(Window(col0, row0, width, height))
    if job.scene_maps is not None:  # whole-raster statistics, the same for every chunk
        data = apply_band_maps(data.astype(np.float32) * np.float32(job.input_scale) + np.float32(job.input_offset),
                               job.scene_maps)
    lap("read")
    gain, bias = _input_affine(bundle, job)
    th, tw = chunk.tile_height, chunk.tile_width
    weights = blend_weights(th, tw, job.overlap)
    logit_sum = np.zeros((bundle.card.num_classes, height, width), np.float32)
    weight_sum = np.zeros((height, width), np.float32)
    tiles = chunk.tiles
    batch_in = np.empty((min(job.batch_size, len(tiles)), data.shape[0], th, tw), np.float32)
    for start in range(0, len(tiles), job.batch_size):
        group = tiles[start : start + job.batch_size]
        cuts = [np.s_[r - row0 : r - row0 + th, c - col0 : c - col0 + tw] for r, c in group]
        batch = batch_in[: len(cuts)]
        for i, cut in enumerate(cuts):
            np.multiply(data[(slice(None), *cut)], gain, out=batch[i])  # the one conversion to float32
            batch[i] += bias
            invalid = ~valid[cut]
            if invalid.any():  # filled with the values that normalise to 0
                batch[i][:, invalid] = 0
        lap("prepare")
        logits = predictor(batch)
        lap("network")
        for i, cut in enumerate(cuts):
            logit_sum[(slice(None), *cut)] += logits[i] * weights
            weight_sum[cut] += weights
        lap("blend")
    del data, batch_in
    block: np.ndarray | None = None
    seams: dict[Window4, tuple[np.ndarray, ...]] = {}
    for cell in chunk.cells:
        local = np.s_[cell.row - row0 : cell.row - row0 + cell.height, cell.col - col0 : cell.col - col0 + cell.width]
        if cell.owners == 1:
            classes, proba = finalise(logit_sum[(slice(None), *local)], weight_sum[local], valid[local], inplace=True)
            block = np.concatenate([classes[None], proba])
        else:
            seams[cell.window] = (logit_sum[(slice(None), *local)], weight_sum[local], valid[local])
    lap("finish")
    if block is None:  # pragma: no cover - every chunk owns one cell alone (plan_chunks)
        raise RuntimeError(f"chunk {chunk.index} owns no cell alone")
    journal.write_chunk(chunk.index, block, seams)
    del valid, logit_sum, weight_sum, block, seams
    trim_heap()
    lap("write")
    return ChunkReport(chunk.index, len(tiles), False, seconds)


def trim_heap() -> None:
    """Give the heap pages freed by a chunk back to the system (glibc `malloc_trim`), as Dask advises for workers:
    chunk after chunk, arrays of a few MiB otherwise fragment the heap and the process grows with the raster."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.cache
def _libc() -> Any:
    """glibc, or None (another C library, another system)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.malloc_trim  # noqa: B018 - missing outside glibc
    except (OSError, AttributeError):
        return None
    return libc


def finish_seam(window: Window4, owners: tuple[int, ...], journal: RunJournal) -> Window4:
    """Add the chunks' weighted logit sums over one seam cell (in chunk order, so reruns give the same bytes),
    finish it and write it; nothing when its file exists."""
    if not journal.seam(window).exists():
        parts = [journal.read_seam_part(index, window) for index in sorted(owners)]
        logits, weights, valid = parts[0]
        for more_logits, more_weights, _ in parts[1:]:
            logits += more_logits
            weights += more_weights
        classes, proba = finalise(logits, weights, valid, inplace=True)
        journal.write_seam(window, np.concatenate([classes[None], proba]))
    return window
