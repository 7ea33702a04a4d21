"""Publishing: layers as COGs with STAC items in the results store, and XYZ tiles of them with rio-tiler."""

from geovigie.tiles._layers import Layer, LayerIndex
from geovigie.tiles._publish import (
    RESULTS_COLLECTION,
    LayerSpec,
    Provenance,
    VectorStyle,
    publish_layer,
    publish_vector_layer,
    results_collection,
    results_store,
)
from geovigie.tiles._render import ramp_colors, render_tile
from geovigie.tiles._validate import OfflineValidator, use_offline_validation, validate_offline

__all__ = [
    "RESULTS_COLLECTION",
    "Layer",
    "LayerIndex",
    "LayerSpec",
    "OfflineValidator",
    "Provenance",
    "VectorStyle",
    "publish_layer",
    "publish_vector_layer",
    "ramp_colors",
    "render_tile",
    "results_collection",
    "results_store",
    "use_offline_validation",
    "validate_offline",
]
