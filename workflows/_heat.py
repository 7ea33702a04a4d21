"""Urban heat islands: intensity above a rural reference, hot spots and per-zone figures, published as layers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pystac

from geovigie.diagnostics import (
    COVERED,
    DEFAULT_MIN_COVERAGE,
    HeatIslandSummary,
    grid_zones,
    heat_island_layer,
    hot_spot_classes,
    hot_spot_legend,
    rural_reference,
    temperature_layer,
    write_csv,
    write_vector,
    zonal_continuous,
)
from geovigie.paths import safe_name
from geovigie.settings import Settings
from geovigie.tiles import LayerSpec, Provenance, VectorStyle, publish_layer, publish_vector_layer, results_store_for
from geovigie.workflows._published import PublishedLayer, layer_target, removed_on_failure


@dataclass
class HeatIslandResult:
    """What a heat-island run produced: the summary, the per-zone table and the published layers."""

    summary: HeatIslandSummary
    zones: gpd.GeoDataFrame
    layers: list[PublishedLayer] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def zone_table(self) -> pd.DataFrame:
        """Per-zone figures without geometry."""
        return pd.DataFrame(self.zones.drop(columns="geometry"))


def heat_islands(
    item: pystac.Item,
    settings: Settings,
    *,
    urban: gpd.GeoDataFrame,
    place: str,
    zones: gpd.GeoDataFrame | None = None,
    rural_mask: str | Path | None = None,
    rural_classes: list[int] | None = None,
    ring_inner_m: float = 1000.0,
    ring_outer_m: float = 5000.0,
    thresholds_c: tuple[float, ...] = (2.0, 4.0, 6.0),
    cell_m: float = 1000.0,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> HeatIslandResult:
    """Heat-island intensity of a land surface temperature item around an urban zone.

    Intensity = LST − the median LST of rural vegetated pixels (classes `rural_classes` of `rural_mask`, or every
    valid pixel when no land cover is given) in the ring `ring_inner_m`–`ring_outer_m` around `urban`. Publishes the
    intensity (°C), the hot-spot classes and the zones coloured by their mean intensity; zones default to a grid of
    `cell_m` cells over the urban zone and its ring. Zone figures are null where less than `min_coverage` of the
    zone has valid pixels. A failed run removes the layer folders it created.
    """
    day = item.datetime or item.common_metadata.start_datetime
    stamp = f"{place}-{day:%Y%m%d}"
    with removed_on_failure(settings, f"uhi-{stamp}", f"uhi-hotspots-{stamp}", f"uhi-zones-{stamp}"):
        return _heat_islands(item, settings, urban=urban, place=place, zones=zones, rural_mask=rural_mask,
                             rural_classes=rural_classes, ring_inner_m=ring_inner_m, ring_outer_m=ring_outer_m,
                             thresholds_c=thresholds_c, cell_m=cell_m, min_coverage=min_coverage)


def _heat_islands(item: pystac.Item, settings: Settings, *, urban: gpd.GeoDataFrame, place: str,
                  zones: gpd.GeoDataFrame | None, rural_mask: str | Path | None, rural_classes: list[int] | None,
                  ring_inner_m: float, ring_outer_m: float, thresholds_c: tuple[float, ...], cell_m: float,
                  min_coverage: float) -> HeatIslandResult:
    started = time.perf_counter()
    day = item.datetime or item.common_metadata.start_datetime
    stamp = f"{safe_name(place, 'place')}-{day:%Y%m%d}"
    lst = layer_target(settings, f"uhi-{stamp}", "lst_celsius.tif")
    temperature_layer(item, lst)
    reference = rural_reference(lst, urban, ring_inner_m=ring_inner_m, ring_outer_m=ring_outer_m,
                                rural_mask=rural_mask, rural_classes=rural_classes,
                                scene=f"{item.id} ({day:%Y-%m-%d})")
    intensity = layer_target(settings, f"uhi-{stamp}")
    summary = heat_island_layer(lst, reference, intensity, hot_spot_thresholds_c=thresholds_c)
    hot_spots = hot_spot_classes(intensity, layer_target(settings, f"uhi-hotspots-{stamp}"), thresholds_c)
    inputs = [item.get_self_href() or item.id]
    common: dict[str, Any] = {"start_datetime": day, "end_datetime": item.common_metadata.end_datetime or day}
    result = HeatIslandResult(summary, gpd.GeoDataFrame())
    published = publish_layer(results_store_for(settings), intensity, LayerSpec(
        f"uhi-{stamp}", f"Heat-island intensity {place} {day:%Y-%m-%d}", "continuous", rescale=(-4.0, 12.0),
        colormap_name="rdylbu_r", unit="celsius", description=summary.method,
    ), Provenance(inputs=inputs, lineage=summary.method, **common))
    result.layers.append(PublishedLayer(published.id, "heat-island intensity", published,
                                        f"reference {summary.reference_c:.1f} °C, urban mean "
                                        f"+{summary.mean_intensity_c:.1f} °C, p90 +{summary.p90_intensity_c:.1f} °C"))
    published = publish_layer(results_store_for(settings), hot_spots, LayerSpec(
        f"uhi-hotspots-{stamp}", f"Heat-island hot spots {place} {day:%Y-%m-%d}", "classes",
        classes=hot_spot_legend(thresholds_c), description=summary.method,
    ), Provenance(inputs=inputs, lineage=f"intensity classes at {', '.join(f'{t:g}' for t in thresholds_c)} °C; "
                                        + summary.method, **common))
    shares = ", ".join(f"{share:.0%}" for share in summary.class_shares)
    result.layers.append(PublishedLayer(published.id, "hot spots", published, f"urban shares per class: {shares}"))

    if zones is None:
        ring = reference.ring
        zones = grid_zones(ring.union(reference.urban).convex_hull, reference.crs, cell_m=cell_m)
    table = zonal_continuous(zones, intensity, variable="intensity_c", min_coverage=min_coverage)
    covered = table.loc[table["status"] == COVERED, "mean"]
    scale = (min(0.0, float(covered.min())), max(1.0, float(covered.max()))) if len(covered) else (0.0, 1.0)
    figures = zones[["zone_id", "geometry"]].merge(table, on="zone_id")
    folder = layer_target(settings, f"uhi-zones-{stamp}").parent
    csv = write_csv(table, folder / "zones.csv")
    features = write_vector(figures, folder / "data.geojson")
    published = publish_vector_layer(results_store_for(settings), features, LayerSpec(
        f"uhi-zones-{stamp}", f"Heat-island intensity per zone {place} {day:%Y-%m-%d}", "vector",
        description=f"Mean and p90 of the intensity per zone (°C above the rural reference). {summary.method}",
        properties={"geovigie:diagnostic": "heat-island", "geovigie:place": place,
                    "geovigie:reference_c": round(summary.reference_c, 2),
                    "geovigie:raster_layer": f"uhi-{stamp}"},
        style=VectorStyle(color_by="mean", colormap_name="ylorrd", unit="°C", label="zone_name", rescale=scale,
                          popup=("zone_name", "mean", "p90", "status", "covered_fraction", "valid_fraction")),
    ), Provenance(inputs=inputs, lineage="exactextract zonal statistics of the intensity layer", **common,
                  extra_assets={"table": (csv, "Per-zone figures (CSV)")}))
    result.zones = figures
    result.layers.append(PublishedLayer(published.id, "heat-island zones", published, f"{len(figures)} zones"))
    result.seconds = time.perf_counter() - started
    return result
