"""Tiled, batched, Dask-parallel prediction of a raster into COG class and probability maps."""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from geovigie.cog import cog_writer
from geovigie.errors import BandMismatchError
from geovigie.inference._blend import StripBlender
from geovigie.inference._cluster import dask_client
from geovigie.inference._grid import blend_weights, tile_offsets
from geovigie.inference._source import RasterSource, open_source
from geovigie.inference._worker import predict_windows
from geovigie.models import ModelBundle, load_bundle
from geovigie.settings import Settings
from geovigie.types import NODATA_CLASS, NODATA_PROBA

RUN_TAG = "GEOVIGIE_RUN"


@dataclass(frozen=True)
class PredictionResult:
    """What a prediction wrote, and how long it took."""

    classes_path: Path
    probabilities_path: Path
    source: RasterSource
    bundle: ModelBundle
    tiles: int
    seconds: float
    skipped: bool
    seconds_predicting: float = 0.0
    """Wall time until the last row was blended; the rest went into building the COGs (overviews)."""

    @property
    def megapixels_per_second(self) -> float:
        """Input megapixels per second of wall time."""
        return self.source.width * self.source.height / 1e6 / max(self.seconds, 1e-9)


def prepare_source(
    input_path: str | Path,
    bundle: ModelBundle,
    *,
    force: bool = False,
    band_names: list[str] | None = None,
    product_level: str | None = None,
) -> RasterSource:
    """Open the input and check it against the bundle's card (bands in order, product level).

    A raster file must hold exactly the card's bands in the card's order; a STAC item's assets are
    picked by band name.
    """
    source = open_source(input_path, band_names=band_names, product_level=product_level)
    wanted = bundle.card.bands
    if Path(input_path).suffix.lower() == ".json" and set(wanted) <= set(source.band_names):
        source = source.select(wanted)
    bundle.check_compatible(source.band_names, source.product_level, source=str(input_path), force=force)
    if force and len(source.band_names) != len(wanted):
        raise BandMismatchError(
            f"{input_path}: {len(source.band_names)} bands cannot feed a model expecting {len(wanted)}, even forced"
        )
    return source


def tile_windows(width: int, height: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Row-major tile windows (col, row, width, height) covering the raster."""
    th, tw = min(tile, height), min(tile, width)
    return [
        (col, row, tw, th)
        for row in tile_offsets(height, th, overlap)
        for col in tile_offsets(width, tw, overlap)
    ]


def _run_signature(source: RasterSource, bundle: ModelBundle, settings: Settings) -> str:
    parts = [bundle.card.weights_sha256, source.location, str(source.band_names), str(settings.tile_size),
             str(settings.overlap)]
    for ref in source.bands:
        stat = os.stat(ref.href)
        parts.append(f"{ref.href}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _existing_run(path: Path) -> str | None:
    import rasterio

    if not path.exists():
        return None
    with rasterio.open(path) as src:
        return src.tags().get(RUN_TAG)


def output_paths(out_dir: Path, source: RasterSource, bundle: ModelBundle) -> tuple[Path, Path]:
    """Where the class map and the probabilities of `source` by `bundle` are written."""
    stem = f"{source.id}__{bundle.card.name}-v{bundle.card.version}"
    return out_dir / f"{stem}_classes.tif", out_dir / f"{stem}_probabilities.tif"


def predict(
    input_path: str | Path,
    out_dir: str | Path,
    settings: Settings,
    *,
    bundle_path: str | Path | None = None,
    client: Any = None,
    force: bool = False,
    band_names: list[str] | None = None,
    product_level: str | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> PredictionResult:
    """Predict `input_path` tile by tile and write a class-map COG and a probability COG.

    Tiles of `settings.tile_size` overlapping by `settings.overlap` are read and predicted in
    batches of `settings.batch_size` on Dask workers (each loads the network once); their logits
    are blended with linear ramps and written row strip by row strip. Reruns with the same input,
    bundle and tiling return the existing outputs (idempotent); a crash leaves no partial file.
    """
    started = time.perf_counter()
    bundle = load_bundle(bundle_path)
    source = prepare_source(input_path, bundle, force=force, band_names=band_names, product_level=product_level)
    out_dir = Path(out_dir)
    classes_path, proba_path = output_paths(out_dir, source, bundle)
    signature = _run_signature(source, bundle, settings)
    windows = tile_windows(source.width, source.height, settings.tile_size, settings.overlap)
    if not overwrite and _existing_run(classes_path) == signature == _existing_run(proba_path):
        return PredictionResult(classes_path, proba_path, source, bundle, len(windows), 0.0, True)

    card = bundle.card
    profile = {
        "driver": "GTiff", "width": source.width, "height": source.height, "crs": source.crs,
        "transform": source.affine, "dtype": "uint8",
    }
    tags = {RUN_TAG: signature, "GEOVIGIE_BUNDLE": bundle.id, "GEOVIGIE_INPUT": source.location}
    with contextlib.ExitStack() as stack:
        classes_dst = stack.enter_context(cog_writer(
            classes_path, profile={**profile, "count": 1, "nodata": NODATA_CLASS},
            band_descriptions=["class"], colormap=_palette(bundle), tags=tags,
        ))
        proba_dst = stack.enter_context(cog_writer(
            proba_path, profile={**profile, "count": card.num_classes, "nodata": NODATA_PROBA},
            band_descriptions=[c.name for c in card.classes], overview_resampling="average",
            tags={**tags, "SCALE": "probability = value / 250"},
        ))

        def write_rows(row: int, classes: np.ndarray, proba: np.ndarray) -> None:
            window = Window(0, row, source.width, classes.shape[0])
            classes_dst.write(classes[None], window=window)
            proba_dst.write(proba, window=window)

        th, tw = windows[0][3], windows[0][2]
        blender = StripBlender(source.width, source.height, card.num_classes, th, write_rows)
        weights = blend_weights(th, tw, settings.overlap)
        client_cm = contextlib.nullcontext(client) if client is not None else dask_client(settings)
        active = stack.enter_context(client_cm)
        for window, logits, valid in _run_batches(active, source, windows, str(bundle.path), settings, progress):
            col, row, _, _ = window
            blender.add(row, col, logits, valid, weights)
        blender.close()
        predicted = time.perf_counter() - started
    return PredictionResult(classes_path, proba_path, source, bundle, len(windows),
                            time.perf_counter() - started, False, predicted)


def _palette(bundle: ModelBundle) -> dict[int, tuple[int, int, int, int]]:
    palette = {value: (0, 0, 0, 0) for value in range(256)}
    palette.update(bundle.card.colormap())
    return palette


def _torch_threads(settings: Settings) -> int:
    slots = settings.dask_workers * settings.dask_threads_per_worker
    return max(1, (os.cpu_count() or 1) // slots)


def _run_batches(client: Any, source: RasterSource, windows: list[tuple[int, int, int, int]], bundle_path: str,
                 settings: Settings, progress: bool):
    """Submit batches with bounded look-ahead and yield (window, logits, valid) in submission order."""
    from geovigie._progress import progress_bar

    batches = [windows[i : i + settings.batch_size] for i in range(0, len(windows), settings.batch_size)]
    max_in_flight = max(2, 2 * len(client.scheduler_info().get("workers", {})) * settings.dask_threads_per_worker)
    pending: collections.deque = collections.deque()
    device, amp, threads = settings.device, settings.amp, _torch_threads(settings)
    with progress_bar(f"predict {source.id}", total=len(windows), enabled=progress) as advance:
        submitted = 0
        while submitted < len(batches) or pending:
            while submitted < len(batches) and len(pending) < max_in_flight:
                batch = batches[submitted]
                future = client.submit(predict_windows, source, batch, bundle_path, device, amp, threads, pure=False)
                pending.append((batch, future))
                submitted += 1
            batch, future = pending.popleft()
            logits, valid = future.result()
            future.release()
            for index, window in enumerate(batch):
                yield window, logits[index], valid[index]
            advance(len(batch))
