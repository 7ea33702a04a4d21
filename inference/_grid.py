"""Tile grid and blending weights. Overlap is tile size minus stride, as in torchgeo's GridGeoSampler."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from geovigie.settings import check_tiling


def tile_offsets(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles covering [0, length); the last tile is aligned to the end."""
    if length <= tile:
        return [0]
    check_tiling(tile, overlap)
    offsets = list(range(0, length - tile, tile - overlap))
    offsets.append(length - tile)
    return offsets


def tile_windows(width: int, height: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Row-major tile windows (col, row, width, height) covering the raster."""
    th, tw = min(tile, height), min(tile, width)
    return [
        (col, row, tw, th)
        for row in tile_offsets(height, th, overlap)
        for col in tile_offsets(width, tw, overlap)
    ]


def _ramp(length: int, overlap: int) -> np.ndarray:
    ramp = np.ones(length, dtype=np.float32)
    overlap = min(overlap, length // 2)
    if overlap > 0:
        edge = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        ramp[:overlap] = edge
        ramp[-overlap:] = np.minimum(ramp[-overlap:], edge[::-1])
    return ramp


@lru_cache(maxsize=8)
def blend_weights(height: int, width: int, overlap: int) -> np.ndarray:
    """Separable weights (height, width): 1 in the centre, ramping down linearly over `overlap` pixels.

    Ramps never reach 0, so a pixel seen by a single tile (at the image edge) keeps its prediction.
    """
    weights = np.outer(_ramp(height, overlap), _ramp(width, overlap))
    weights.setflags(write=False)
    return weights
