"""Tiled, streaming, Dask-parallel inference writing COG class and probability maps."""

from geovigie.inference._device import resolve_device
from geovigie.inference._predict import PredictionResult, predict, prepare_source, tile_windows
from geovigie.inference._source import RasterSource, open_source

__all__ = ["PredictionResult", "RasterSource", "open_source", "predict", "prepare_source", "resolve_device",
           "tile_windows"]
