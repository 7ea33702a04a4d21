"""A job's area tasks (`zan`, `dumps`): run once over its territory on the inputs its request names, through the
same workflow functions as `geovigie diagnose zan` and `geovigie diagnose dumps`; their figures are then loaded into
PostGIS (`geovigie.zone_figures`, `geovigie.dump_sites`) and linked from the job.

The request's `zan` names two published class layers (`before`, `after`, same grid), zones and a shipped mapping;
the ZAN dates are the job's period (start: the first pass, end: the second). The request's `dumps` names a shipped
LiDAR HD height model (DSM and DTM folders of the sample data), optionally a published probability / class layer (a
dump model's output; without one, the height above ground stands in and every site is a candidate), and options.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import geopandas as gpd
from shapely.geometry import shape

from geovigie.cog import write_array_cog
from geovigie.diagnostics import request_zones, shipped_mapping
from geovigie.errors import DiagnosticsWarning, InvalidInputError
from geovigie.records import sync_sites, sync_zones
from geovigie.settings import Settings
from geovigie.tiles import LayerIndex, results_store_for
from geovigie.workflows._demo_inputs import lidar_models
from geovigie.workflows._dumps import detector_input, dump_sites
from geovigie.workflows._published import PublishedLayer
from geovigie.workflows._zan import zan

Say = Callable[[str], None]
STANDIN_NOTE = ("Stand-in layer: height above ground from IGN LiDAR HD (buildings, trees), not a dump detector; "
                "every site is a candidate.")


@dataclass
class AreaResult:
    """What an area task published: layers, and links to its files and features (relative to the public URL)."""

    layers: list[PublishedLayer] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)


def period_dates(period: str) -> tuple[date, date]:
    """The first and last day of a checked `start/end` period."""
    start, _, end = period.partition("/")
    return date.fromisoformat(start[:10]), date.fromisoformat(end[:10])


def _layer_file(settings: Settings, layer_id: str) -> str:
    return str(LayerIndex(results_store_for(settings)).get(layer_id).path)


def _territory(request: dict[str, Any]) -> tuple[Any, str]:
    return shape(request["geometry"]), str(request.get("territory_label") or "territory")


def _zones(settings: Settings, request: dict[str, Any], spec: Any) -> gpd.GeoDataFrame:
    geometry, label = _territory(request)
    return request_zones(spec, territory=geometry, label=label, sample_dir=settings.sample_data_path())


def run_zan(settings: Settings, job_id: str, request: dict[str, Any], say: Say) -> AreaResult:
    """The ZAN task of a job: `workflows.zan` on the two named class layers, figures per zone into PostGIS."""
    spec = request["zan"]
    start, end = period_dates(request["period"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DiagnosticsWarning)
        result = zan(_layer_file(settings, spec["before"]), _layer_file(settings, spec["after"]), settings,
                     place=spec.get("place") or f"job-{job_id}", zones=_zones(settings, request, spec.get("zones")),
                     start=start, end=end, mapping=shipped_mapping(spec.get("mapping") or "odeon-naf"),
                     mmu_building_m2=spec.get("mmu_building_m2", 200.0), mmu_other_m2=spec.get("mmu_other_m2", 500.0),
                     min_coverage=spec.get("min_coverage", 0.95))
    for warning in caught:
        say(f"note: {warning.message}")
    sync_zones(settings)
    zones_layer = result.layers[-1].id
    links = [
        {"rel": "data", "href": f"/assets/{zones_layer}/table", "type": "text/csv", "title": "ZAN per zone (CSV)"},
        {"rel": "data", "href": f"/assets/{zones_layer}/data", "type": "application/geo+json",
         "title": "ZAN per zone (GeoJSON)"},
        {"rel": "features", "href": f"/ogc/collections/geovigie.zone_figures/items?layer_id={quote(zones_layer)}",
         "type": "application/geo+json", "title": "ZAN per zone (OGC API Features, PostGIS zone_figures)"},
    ]
    return AreaResult(result.layers, links)


def _sensitive(spec: dict[str, Any] | None) -> dict[str, gpd.GeoDataFrame] | None:
    if not spec:
        return None
    return {name: gpd.GeoDataFrame.from_features(value["features"] if value.get("type") == "FeatureCollection"
                                                 else [value], crs="EPSG:4326")
            for name, value in spec.items()}


def within_territory(layer: str | Path, territory: Any, target: Path) -> Path:
    """`layer` cropped to the territory (WGS84), pixels outside it set to nodata (0 when the layer has none);
    `layer` itself when the territory holds it whole.

    Raises:
        InvalidInputError: the layer does not overlap the territory.
    """
    import rasterio
    from rasterio.mask import mask
    from shapely.geometry import box, mapping

    with rasterio.open(layer) as src:
        area = gpd.GeoSeries([territory], crs="EPSG:4326").to_crs(src.crs).iloc[0]
        if area.contains(box(*src.bounds)):
            return Path(layer)
        if not area.intersects(box(*src.bounds)):
            raise InvalidInputError(f"{Path(layer).name} does not overlap the job's territory")
        nodata = src.nodata if src.nodata is not None else 0
        data, transform = mask(src, [mapping(area)], crop=True, nodata=nodata, filled=True)
        profile = {"driver": "GTiff", "crs": src.crs, "transform": transform, "nodata": nodata}
        kept = {"tags": src.tags(), "band_descriptions": [d or "" for d in src.descriptions],
                "scales": list(src.scales), "offsets": list(src.offsets)}
    return write_array_cog(target, data, profile=profile, **kept)


def run_dumps(settings: Settings, job_id: str, request: dict[str, Any], say: Say) -> AreaResult:
    """The dumps task of a job: `workflows.dump_sites` on the named layer (or the LiDAR stand-in) with the height
    model's volumes, sites into PostGIS."""
    spec = request["dumps"]
    inputs = settings.data_dir / "jobs" / job_id / "inputs"
    dsm, dtm, standin = lidar_models(settings.sample_data_path(), inputs, spec["height_model"])
    claimed = bool(spec.get("validated") and spec.get("layer"))
    detector = detector_input(LayerIndex(results_store_for(settings)).get(spec["layer"]) if spec.get("layer")
                              else standin, class_name=spec.get("class_name"), class_value=spec.get("class_value"),
                              claimed_validated=claimed)
    cropped = within_territory(detector.path, _territory(request)[0], inputs / "layer-in-territory.tif")
    detector = replace(detector, path=cropped)  # sites inside the territory only
    watch = spec.get("watch") or f"job-{job_id}"
    pass_date = date.fromisoformat(spec["pass_date"]) if spec.get("pass_date") else period_dates(request["period"])[1]
    zones = _zones(settings, request, spec["zones"]) if spec.get("zones") else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DiagnosticsWarning)
        result = dump_sites(detector, settings, watch=watch, pass_date=pass_date,
                            candidate=False if claimed else (None if spec.get("layer") else True),
                            threshold=spec.get("threshold", 0.5), min_area_m2=spec.get("min_area_m2", 20.0),
                            zones=zones, dsm=dsm, dtm=dtm, sensitive=_sensitive(spec.get("sensitive")),
                            source_note="" if spec.get("layer") else STANDIN_NOTE,
                            min_height_m=spec.get("min_height_m", 0.2), min_observed=spec.get("min_observed", 0.5))
    if result.note:
        say(f"note: {result.note}")
    for warning in caught:
        say(f"note: {warning.message}")
    sync_sites(settings)
    layer_id = result.layer.id if result.layer else f"dumps-{watch}"
    links = [
        {"rel": "data", "href": f"/assets/{layer_id}/{key}", "type": kind, "title": title}
        for key, kind, title in (("data", "application/geo+json", "Sites (GeoJSON)"),
                                 ("csv", "text/csv", "Sites for field teams (CSV)"),
                                 ("gpkg", "application/geopackage+sqlite3", "Sites (GeoPackage)"),
                                 ("alerts", "text/csv", "New or grown since the last pass (CSV)"))
    ]
    links.append({"rel": "features", "href": f"/ogc/collections/geovigie.dump_sites/items?watch={quote(watch)}",
                  "type": "application/geo+json", "title": "Sites (OGC API Features, PostGIS dump_sites)"})
    say(f"dumps {watch} {pass_date}: {result.layer.detail if result.layer else 'no layer'}; "
        f"{len(result.alerts)} alerts")
    return AreaResult([result.layer] if result.layer else [], links)


AREA_RUNNERS: dict[str, Callable[[Settings, str, dict[str, Any], Say], AreaResult]] = {
    "zan": run_zan, "dumps": run_dumps}
