"""Publishing: layers as COGs with STAC items in the results store (pgstac or static), and XYZ tiles with rio-tiler."""

from geovigie.tiles._backend import (
    STATIC_NOTICE,
    index_inputs,
    inputs_store,
    inputs_store_for,
    results_database,
    results_store,
    results_store_for,
    stac_backend,
    stop_results_database,
)
from geovigie.tiles._layers import LAYER_TTL, Layer, LayerIndex
from geovigie.tiles._publish import (
    MODEL_CARD_ASSET,
    RESULTS_COLLECTION,
    LayerSpec,
    Provenance,
    VectorStyle,
    publish_layer,
    publish_vector_layer,
    results_collection,
)
from geovigie.tiles._render import ramp_colors, render_tile
from geovigie.tiles._validate import OfflineValidator, use_offline_validation, validate_offline

__all__ = [
    "LAYER_TTL",
    "MODEL_CARD_ASSET",
    "RESULTS_COLLECTION",
    "STATIC_NOTICE",
    "Layer",
    "LayerIndex",
    "LayerSpec",
    "OfflineValidator",
    "Provenance",
    "VectorStyle",
    "index_inputs",
    "inputs_store",
    "inputs_store_for",
    "publish_layer",
    "publish_vector_layer",
    "ramp_colors",
    "render_tile",
    "results_collection",
    "results_database",
    "results_store",
    "results_store_for",
    "stac_backend",
    "stop_results_database",
    "use_offline_validation",
    "validate_offline",
]
