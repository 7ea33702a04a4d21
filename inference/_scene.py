"""Whole-raster statistics for a bundle's per-scene normalisation, computed once by the client before tiling."""

from __future__ import annotations

import math

import numpy as np
from rasterio.windows import Window

from geovigie.inference._source import RasterSource
from geovigie.models import MAX_STAT_PIXELS, BandMaps, ModelCard, band_maps

BLOCK = 256
"""Statistics are read in windows of (BLOCK * step)² pixels, every step-th row and column kept."""


def scene_maps(source: RasterSource, card: ModelCard, input_scale: float = 1.0, input_offset: float = 0.0,
               max_pixels: int = MAX_STAT_PIXELS) -> BandMaps | None:
    """The card's per-scene mapping of this input (None when the card has none), from every valid pixel of the whole
    raster, values scaled as `value * input_scale + input_offset`; rasters of more than `max_pixels` pixels are read
    on a regular grid of every k-th row and column (k the smallest that fits), window by window (bounded memory).
    Without any valid pixel (a forced run, whose outputs are all nodata), the identity.
    """
    if card.scene_normalisation is None:
        return None
    step = max(1, math.ceil(math.sqrt(source.width * source.height / max_pixels)))
    parts, side = [], BLOCK * step
    for row in range(0, source.height, side):
        for col in range(0, source.width, side):
            window = Window(col, row, min(side, source.width - col), min(side, source.height - row))
            data, valid = source.read(window)
            data, valid = data[:, ::step, ::step], valid[::step, ::step]
            parts.append(data[:, valid].astype(np.float64))
    pixels = np.concatenate(parts, axis=1)
    if pixels.shape[1] == 0:  # only a forced run gets here (`prepare_source` refuses it): every output is nodata
        return tuple(((0.0, 1.0), (0.0, 1.0)) for _ in range(pixels.shape[0]))
    if input_scale != 1.0 or input_offset != 0.0:
        pixels = pixels * input_scale + input_offset
    return band_maps(pixels, card.scene_normalisation)
