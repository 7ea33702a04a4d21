"""Workflows: one function per product, from items and settings to published layers.

The CLI, the demo and (next) the jobs API and the batch watcher call these; none assembles STAC metadata itself.
"""

from geovigie.workflows._indices import ndvi, surface_temperature
from geovigie.workflows._landcover import landcover
from geovigie.workflows._published import PublishedLayer, layer_target

__all__ = ["PublishedLayer", "landcover", "layer_target", "ndvi", "surface_temperature"]
