"""Diagnostics: vegetation (NDVI) and surface temperature layers; zonal figures come next."""

from geovigie.diagnostics.heat import TemperatureSummary, temperature_layer
from geovigie.diagnostics.vegetation import NdviSummary, ndvi_layer

__all__ = ["NdviSummary", "TemperatureSummary", "ndvi_layer", "temperature_layer"]
