"""Tiled, streaming, Dask-parallel inference writing COG class and probability maps."""

from geovigie.inference._cluster import ClusterOptions, dask_client, local_cluster_kind
from geovigie.inference._grid import tile_windows
from geovigie.inference._predict import (
    PredictionResult,
    PredictOptions,
    predict,
    prediction_signature,
    prepare_source,
    run_signature,
)
from geovigie.inference._source import RasterSource, open_source, read_input

__all__ = ["ClusterOptions", "PredictOptions", "PredictionResult", "RasterSource", "dask_client",
           "local_cluster_kind", "open_source", "predict", "prediction_signature", "prepare_source", "read_input",
           "run_signature", "tile_windows"]
