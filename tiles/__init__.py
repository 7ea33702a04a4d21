"""Publishing: layers as COGs with STAC items, and XYZ tiles of them with rio-tiler."""

from geovigie.tiles._layers import Layer, LayerIndex
from geovigie.tiles._publish import RESULTS_COLLECTION, LayerClass, LayerSpec, Provenance, layer_folder, publish_layer
from geovigie.tiles._render import ramp_colors, render_tile
from geovigie.tiles._validate import OfflineValidator, use_offline_validation, validate_offline

__all__ = [
    "RESULTS_COLLECTION",
    "Layer",
    "LayerClass",
    "LayerIndex",
    "LayerSpec",
    "OfflineValidator",
    "Provenance",
    "layer_folder",
    "publish_layer",
    "ramp_colors",
    "render_tile",
    "use_offline_validation",
    "validate_offline",
]
