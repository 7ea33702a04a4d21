"""Chunked prediction: the chunk plan covers the raster once, and blending on the workers changes no pixel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.windows import Window

from geovigie.inference import PredictOptions, open_source, predict, tile_windows
from geovigie.inference._blend import finalise
from geovigie.inference._chunks import plan_chunks
from geovigie.inference._grid import blend_weights
from geovigie.models import (
    NETWORK_BUNDLE,
    apply_band_maps,
    band_maps,
    fill_values,
    forward,
    load_bundle,
    normalise,
    stat_pixels,
)
from tests.conftest import SLOVENIA_SCENE


@pytest.mark.parametrize(("width", "height", "tile", "overlap", "per_chunk"), [
    (4100, 4141, 256, 64, 8), (100, 101, 32, 8, 1), (100, 101, 32, 8, 3), (1000, 37, 64, 16, 2), (1, 1, 256, 64, 8),
    (70, 300, 64, 63, 2),
])
def test_plan_covers_each_tile_once_and_each_pixel_with_one_cell(width: int, height: int, tile: int, overlap: int,
                                                                 per_chunk: int) -> None:
    chunks = plan_chunks(width, height, tile, overlap, per_chunk)
    tiles = sorted((r, c) for chunk in chunks for r, c in chunk.tiles)
    assert tiles == sorted((r, c) for c, r, _, _ in tile_windows(width, height, tile, overlap))
    cells = {cell.window: cell.owners for chunk in chunks for cell in chunk.cells}
    listed: dict[tuple[int, int, int, int], int] = {}
    for chunk in chunks:
        c0, r0, w, h = chunk.extent
        assert c0 >= 0 and r0 >= 0 and c0 + w <= width and r0 + h <= height
        for cell in chunk.cells:
            assert c0 <= cell.col and cell.col + cell.width <= c0 + w and r0 <= cell.row
            assert cell.row + cell.height <= r0 + h
            listed[cell.window] = listed.get(cell.window, 0) + 1
    assert listed == cells  # a cell's owners are the chunks that list it
    painted = np.zeros((height, width), np.int32)
    for col, row, w, h in cells:
        painted[row : row + h, col : col + w] += 1
    assert (painted == 1).all()
    if len(chunks) > 1:
        assert max(cells.values()) > 1  # neighbouring chunks share seams


def _whole_blend(tile: int, overlap: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference: every tile read on its own, its weighted logits summed over the whole raster, then finalised."""
    bundle = load_bundle(NETWORK_BUNDLE)  # a U-Net (the default of predict is a per-pixel classifier)
    network = bundle.load_network()
    source = open_source(SLOVENIA_SCENE)
    with rasterio.open(SLOVENIA_SCENE) as src:  # the card's per-scene mapping, from the whole raster
        maps = band_maps(stat_pixels(src.read().astype(np.float32)), bundle.card.scene_normalisation)
    windows = tile_windows(source.width, source.height, tile, overlap)
    logit_sum = np.zeros((bundle.card.num_classes, source.height, source.width), np.float32)
    weight_sum = np.zeros((source.height, source.width), np.float32)
    valid_any = np.zeros((source.height, source.width), bool)
    weights = blend_weights(tile, tile, overlap)
    for start in range(0, len(windows), batch):
        group = windows[start : start + batch]
        reads = source.read_windows([Window(*w) for w in group], fill=fill_values(bundle.card))
        mapped = np.stack([apply_band_maps(d, maps) for d, _ in reads])
        logits = forward(network, normalise(bundle.card, mapped), torch.device("cpu"), False) / bundle.card.temperature
        for (col, row, w, h), tile_logits, (_, valid) in zip(group, logits, reads, strict=True):
            logit_sum[:, row : row + h, col : col + w] += tile_logits[:, :h, :w] * weights[:h, :w]
            weight_sum[row : row + h, col : col + w] += weights[:h, :w]
            valid_any[row : row + h, col : col + w] |= valid[:h, :w]
    return finalise(logit_sum, weight_sum, valid_any)


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def test_chunks_blend_like_the_whole_raster_sum(dask_client, tmp_path: Path) -> None:
    """16 tiles of 32 px: one chunk gives the whole-raster blend's classes exactly and its probabilities within float
    rounding (the workers scale and normalise in one multiply-add); 16 or 4 chunks differ only by float rounding in
    the seams, and twice the same run gives the same bytes."""
    classes, proba = _whole_blend(32, 8, 4)
    results = {}
    for per_chunk in (8, 2, 1, 1):
        options = PredictOptions(32, 8, 4, "cpu", chunk_tiles=per_chunk)
        out = tmp_path / f"c{per_chunk}-{len(results)}"
        result = predict(SLOVENIA_SCENE, out, options, client=dask_client, progress=False, product_level="L1C",
                         bundle=NETWORK_BUNDLE)
        assert result.tiles == 16
        results[(per_chunk, len(results))] = (_read(result.classes_path)[0], _read(result.probabilities_path))
    one_chunk = results[(8, 0)]
    assert np.array_equal(one_chunk[0], classes)
    assert np.abs(one_chunk[1].astype(int) - proba).max() <= 1 and (one_chunk[1] == proba).mean() > 0.999
    for key in ((2, 1), (1, 2)):
        chunked_classes, chunked_proba = results[key]
        assert (chunked_classes == classes).mean() > 0.999, key
        assert np.abs(chunked_proba.astype(int) - proba).max() <= 1, key
    assert all(np.array_equal(a, b) for a, b in zip(results[(1, 2)], results[(1, 3)], strict=True))
