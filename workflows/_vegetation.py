"""Vegetation per zone: NDVI figures and the share of dense / sparse vegetation, published as a zone layer."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio

from geovigie.classes import ClassInfo, palette
from geovigie.cog import cog_writer
from geovigie.diagnostics import write_csv, write_vector, zonal_classes, zonal_continuous
from geovigie.paths import safe_name
from geovigie.settings import Settings
from geovigie.tiles import LayerIndex, LayerSpec, Provenance, VectorStyle, publish_vector_layer, results_store_for
from geovigie.types import NODATA_CLASS
from geovigie.workflows._published import PublishedLayer, layer_target

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


def vegetation_by_zone(ndvi_layer: str, settings: Settings, *, zones: gpd.GeoDataFrame, place: str) -> VegetationResult:
    """NDVI mean, median, p10, p90 and the dense / sparse vegetation shares of each zone of a published NDVI layer."""
    started = time.perf_counter()
    layer = LayerIndex(results_store_for(settings)).get(ndvi_layer)
    layer_id = f"vegetation-zones-{safe_name(place, 'place')}"
    classes_path = layer_target(settings, layer_id, "vegetation_classes.tif")
    _vegetation_classes(str(layer.path), str(classes_path))
    figures = zonal_continuous(zones, layer.path, variable="ndvi")
    shares = zonal_classes(zones, classes_path, {c.value: c.name for c in VEGETATION_CLASSES})
    pivot = shares.pivot_table(index="zone_id", columns="class_value", values="fraction", aggfunc="sum",
                               fill_value=0.0)
    table = figures.rename(columns={"mean": "ndvi_mean", "median": "ndvi_median", "p10": "ndvi_p10",
                                    "p90": "ndvi_p90"}).drop(columns=["variable", "min", "max"])
    table["dense_vegetation_share"] = table["zone_id"].map(pivot.get(2, pd.Series(dtype=float))).fillna(0.0)
    table["sparse_vegetation_share"] = table["zone_id"].map(pivot.get(1, pd.Series(dtype=float))).fillna(0.0)
    area = shares.groupby("zone_id")["area_ha"].sum()
    table["observed_area_ha"] = table["zone_id"].map(area).fillna(0.0)
    folder = classes_path.parent
    csv = write_csv(table, folder / "zones.csv")
    features = write_vector(zones[["zone_id", "geometry"]].merge(table, on="zone_id"), folder / "data.geojson")
    method = (f"exactextract over the NDVI layer {ndvi_layer} (cloud-masked pixels excluded); vegetation classes "
              f"at NDVI {THRESHOLDS[0]} and {THRESHOLDS[1]}; shares of the observed (valid, covered) area")
    published = publish_vector_layer(results_store_for(settings), features, LayerSpec(
        layer_id, f"Vegetation per zone {place}", "vector", description=method,
        properties={"geovigie:diagnostic": "vegetation", "geovigie:raster_layer": ndvi_layer},
        style=VectorStyle(color_by="ndvi_mean", colormap_name="rdylgn", rescale=(0.0, 0.9), unit="NDVI",
                          label="zone_name", popup=("zone_name", "ndvi_mean", "dense_vegetation_share",
                                                    "covered_fraction", "valid_fraction")),
    ), Provenance(inputs=[str(layer.path)], lineage=method, extra_assets={"table": (csv, "Per-zone figures (CSV)")}))
    observed = table[table["covered_fraction"] > 0]
    detail = f"{len(observed)} of {len(table)} zones observed, mean NDVI {observed['ndvi_mean'].mean():.2f}"
    return VegetationResult(table, [PublishedLayer(layer_id, "vegetation per zone", published, detail)],
                            time.perf_counter() - started)
