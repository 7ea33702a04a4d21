"""Vegetation per zone: NDVI figures and the share of dense / sparse vegetation, published as a zone layer."""

from __future__ import annotations

import datetime as dt
import time
import warnings
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio

from geovigie.classes import ClassInfo, palette
from geovigie.cog import cog_writer
from geovigie.diagnostics import (
    COVERED,
    DEFAULT_MIN_COVERAGE,
    check_ndvi_layer,
    write_csv,
    write_vector,
    zonal_classes,
    zonal_continuous,
)
from geovigie.errors import DiagnosticsWarning
from geovigie.paths import safe_name
from geovigie.settings import Settings
from geovigie.tiles import (
    RESULTS_COLLECTION,
    Layer,
    LayerIndex,
    LayerSpec,
    Provenance,
    VectorStyle,
    publish_vector_layer,
    results_store_for,
)
from geovigie.types import NODATA_CLASS
from geovigie.workflows._published import PublishedLayer, layer_target, removed_on_failure

VEGETATION_CLASSES = (
    ClassInfo(value=0, name="little or no vegetation (NDVI < 0.2)", color="#bdbdbd"),
    ClassInfo(value=1, name="sparse vegetation (0.2 ≤ NDVI < 0.5)", color="#c2e699"),
    ClassInfo(value=2, name="dense vegetation (NDVI ≥ 0.5)", color="#238443"),
)
THRESHOLDS = (0.2, 0.5)


@dataclass
class VegetationResult:
    """Per-zone vegetation figures and the published zone layer."""

    table: pd.DataFrame
    layers: list[PublishedLayer] = field(default_factory=list)
    seconds: float = 0.0


def _vegetation_classes(ndvi: str, target: str) -> None:
    with rasterio.open(ndvi) as src:
        values = src.read(1, masked=True)
        profile = {"driver": "GTiff", "width": src.width, "height": src.height, "count": 1, "dtype": "uint8",
                   "crs": src.crs, "transform": src.transform, "nodata": NODATA_CLASS}
    classes = np.digitize(values.filled(np.nan), THRESHOLDS).astype(np.uint8)
    classes[np.ma.getmaskarray(values) | ~np.isfinite(values.filled(np.nan))] = NODATA_CLASS
    with cog_writer(target, profile=profile, band_descriptions=["vegetation class from NDVI"],
                    colormap=palette(VEGETATION_CLASSES)) as dst:
        dst.write(classes[None])


def _dates_of(settings: Settings, layer_id: str) -> tuple[dt.datetime | None, dt.datetime | None, dt.datetime | None]:
    """(datetime, start, end) of a published layer's imagery, for the layers computed from it."""
    item = results_store_for(settings).get(RESULTS_COLLECTION, layer_id)
    if item.datetime is not None:
        return item.datetime, None, None
    return None, item.common_metadata.start_datetime, item.common_metadata.end_datetime


def vegetation_by_zone(ndvi_layer: str, settings: Settings, *, zones: gpd.GeoDataFrame, place: str,
                       min_coverage: float = DEFAULT_MIN_COVERAGE) -> VegetationResult:
    """NDVI mean, median, p10, p90 and the dense / sparse vegetation shares of each zone of a published NDVI layer.

    Figures of zones observed on less than `min_coverage` of their area (status "partial" / "not_covered") are
    null, never 0.
    """
    layer = LayerIndex(results_store_for(settings)).get(ndvi_layer)
    check_ndvi_layer(layer.path)
    with removed_on_failure(settings, f"vegetation-zones-{safe_name(place, 'place')}"):
        return _vegetation_by_zone(layer, ndvi_layer, settings, zones=zones, place=place, min_coverage=min_coverage)


def _vegetation_by_zone(layer: Layer, ndvi_layer: str, settings: Settings, *, zones: gpd.GeoDataFrame, place: str,
                        min_coverage: float) -> VegetationResult:
    started = time.perf_counter()
    layer_id = f"vegetation-zones-{safe_name(place, 'place')}"
    classes_path = layer_target(settings, layer_id, "vegetation_classes.tif")
    _vegetation_classes(str(layer.path), str(classes_path))
    figures = zonal_continuous(zones, layer.path, variable="ndvi", min_coverage=min_coverage)
    with warnings.catch_warnings():  # same valid pixels as the NDVI: zonal_continuous already warned
        warnings.simplefilter("ignore", DiagnosticsWarning)
        shares = zonal_classes(zones, classes_path, {c.value: c.name for c in VEGETATION_CLASSES},
                               min_coverage=min_coverage)
    pivot = shares.pivot_table(index="zone_id", columns="class_value", values="fraction", aggfunc="sum",
                               fill_value=0.0)
    table = figures.rename(columns={"mean": "ndvi_mean", "median": "ndvi_median", "p10": "ndvi_p10",
                                    "p90": "ndvi_p90"}).drop(columns=["variable", "min", "max"])
    observed = table["status"] == COVERED  # a covered zone without the class has a share of 0; others none
    for column, value in (("dense_vegetation_share", 2), ("sparse_vegetation_share", 1)):
        share = table["zone_id"].map(pivot.get(value, pd.Series(dtype=float)))
        table[column] = share.fillna(0.0).where(observed)
    folder = classes_path.parent
    csv = write_csv(table, folder / "zones.csv")
    features = write_vector(zones[["zone_id", "geometry"]].merge(table, on="zone_id"), folder / "data.geojson")
    when, start, end = _dates_of(settings, ndvi_layer)  # the NDVI scene's, not the publication's
    method = (f"exactextract over the NDVI layer {ndvi_layer} (cloud-masked pixels excluded); vegetation classes "
              f"at NDVI {THRESHOLDS[0]} and {THRESHOLDS[1]}; shares of the observed (valid, covered) area")
    published = publish_vector_layer(results_store_for(settings), features, LayerSpec(
        layer_id, f"Vegetation per zone {place}", "vector", description=method,
        properties={"geovigie:diagnostic": "vegetation", "geovigie:raster_layer": ndvi_layer},
        style=VectorStyle(color_by="ndvi_mean", colormap_name="rdylgn", rescale=(0.0, 0.9), unit="NDVI",
                          label="zone_name", popup=("zone_name", "ndvi_mean", "dense_vegetation_share", "status",
                                                    "covered_fraction", "valid_fraction")),
    ), Provenance(inputs=[str(layer.path)], lineage=method, extra_assets={"table": (csv, "Per-zone figures (CSV)")},
                  datetime=when, start_datetime=start, end_datetime=end))
    shown = table[observed]
    mean = f"mean NDVI {shown['ndvi_mean'].mean():.2f}" if len(shown) else "no NDVI figure"
    detail = f"{len(shown)} of {len(table)} zones covered, {mean}"
    return VegetationResult(table, [PublishedLayer(layer_id, "vegetation per zone", published, detail)],
                            time.perf_counter() - started)
