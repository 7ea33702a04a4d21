"""Vegetation (NDVI) and surface temperature layers from catalog items."""

from __future__ import annotations

import time

import pystac

from geovigie.diagnostics import ndvi_layer, temperature_layer
from geovigie.paths import safe_name
from geovigie.settings import Settings
from geovigie.tiles import LayerSpec, Provenance, publish_layer, results_store_for
from geovigie.types import LAMBERT93
from geovigie.workflows._published import PublishedLayer, layer_target


def ndvi(item: pystac.Item, settings: Settings, *, crs: str = LAMBERT93, resolution: float = 10.0) -> PublishedLayer:
    """Cloud-masked NDVI of a Sentinel-2 L2A item on a `crs` grid, published as a continuous layer."""
    started = time.perf_counter()
    day = item.datetime or item.common_metadata.start_datetime
    collection = safe_name(item.collection_id or "s2", "collection id")
    layer_id = f"ndvi-{collection}-{day:%Y%m%d}".replace("s2-l2a-theia-", "")
    target = layer_target(settings, layer_id)
    summary = ndvi_layer([item], target, crs=crs, resolution=resolution)
    spec = LayerSpec(layer_id, f"NDVI {item.collection_id} {day:%Y-%m-%d}", "continuous", rescale=(0.0, 0.9),
                     colormap_name="rdylgn", unit="NDVI",
                     description=f"Mean NDVI of clear pixels (Theia CLM and EDG masks); "
                                 f"{summary.masked_fraction:.2%} masked.")
    provenance = Provenance(inputs=[item.get_self_href() or item.id], datetime=item.datetime,
                            lineage=f"NDVI = (B08 - B04) / (B08 + B04) on Theia FRE reflectance, {crs} "
                                    f"{resolution:g} m grid, pixels with CLM or EDG != 0 masked")
    published = publish_layer(results_store_for(settings), target, spec, provenance)
    detail = f"mean {summary.mean_ndvi:.3f}, {summary.masked_fraction:.2%} masked (cloud, shadow, outside the scene)"
    return PublishedLayer(layer_id, "NDVI", published, detail, time.perf_counter() - started)


def surface_temperature(item: pystac.Item, settings: Settings) -> PublishedLayer:
    """Land surface temperature (°C) of a Landsat item, published as a continuous layer."""
    started = time.perf_counter()
    day = item.datetime or item.common_metadata.start_datetime
    collection = safe_name(item.collection_id or "landsat", "collection id")
    layer_id = f"lst-{collection.replace('landsat-lst-', '')}-{day:%Y%m%d}"
    target = layer_target(settings, layer_id)
    stats = temperature_layer(item, target)
    spec = LayerSpec(layer_id, f"Surface temperature {item.collection_id} {day:%Y-%m-%d}", "continuous",
                     rescale=(round(stats.p02, 1), round(stats.p98, 1)), colormap_name="inferno", unit="celsius")
    provenance = Provenance(inputs=[item.get_self_href() or item.id], start_datetime=day,
                            end_datetime=item.common_metadata.end_datetime or day,
                            lineage="Landsat C2 L2 ST_B10 converted to °C; copied as COG")
    published = publish_layer(results_store_for(settings), target, spec, provenance)
    detail = f"{stats.p02:.1f}–{stats.p98:.1f} °C (p2–p98), mean {stats.mean:.1f} °C"
    return PublishedLayer(layer_id, "temperature", published, detail, time.perf_counter() - started)
