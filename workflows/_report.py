"""`geovigie report`: one page gathering the diagnostics published in the results store."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pystac

from geovigie.diagnostics import Figure, Report, Section, Table, bar_chart_png, raster_map_png, write_report
from geovigie.errors import EmptySearchError
from geovigie.settings import Settings
from geovigie.tiles import RESULTS_COLLECTION, LayerIndex, results_store_for

ORDER = ("vegetation", "zan", "dump-sites", "heat-island")
TITLES = {"vegetation": "Végétation par zone / vegetation per zone",
          "zan": "Artificialisation (ZAN) / land take",
          "dump-sites": "Dépôts sauvages / dump sites",
          "heat-island": "Îlots de chaleur / urban heat islands"}


def _asset_path(item: pystac.Item, key: str) -> Path | None:
    asset = item.assets.get(key)
    return Path(asset.get_absolute_href() or "") if asset is not None else None


def _zones(item: pystac.Item) -> gpd.GeoDataFrame:
    path = _asset_path(item, "data")
    return gpd.read_file(path, engine="pyogrio") if path is not None else gpd.GeoDataFrame()


def _raster_figure(index: LayerIndex, item: pystac.Item, zones: gpd.GeoDataFrame, **kwargs: object) -> list[Figure]:
    layer_id = item.properties.get("geovigie:raster_layer")
    if not layer_id or layer_id not in index.ids():
        return []
    layer = index.get(str(layer_id))
    legend = [(int(c["value"]), str(c["name"]), str(c["color"])) for c in layer.legend] or None
    png = raster_map_png(layer.path, title=layer.title, zones=zones, legend=legend,
                         colormap=layer.colormap_name or "viridis",
                         vmin=layer.rescale[0] if layer.rescale else None,
                         vmax=layer.rescale[1] if layer.rescale else None, unit=layer.unit, **kwargs)
    return [Figure(png, f"{layer.title} — {layer.description[:300]}")]


def _section(kind: str, item: pystac.Item, index: LayerIndex) -> Section:
    description = str(item.properties.get("description", ""))
    section = Section(f"{TITLES[kind]}: {item.properties.get('title', item.id)}", description)
    if kind == "dump-sites":
        csv = _asset_path(item, "csv")
        frame = pd.read_csv(csv) if csv else pd.DataFrame()
        columns = [c for c in ("site_id", "status", "area_m2", "volume_m3", "volume_uncertainty_m3", "valid_fraction",
                               "volume_note", "commune_name",
                               "centroid_lat", "centroid_lon", "first_seen", "last_seen", "candidate")
                   if c in frame.columns]
        section.tables.append(Table(frame[columns], "Sites of the last pass (one row per site)", f"{item.id}.csv"))
        if not frame.empty:
            counts = frame.groupby("status").size().rename("sites").reset_index()
            section.figures.append(Figure(bar_chart_png(counts, "status", ["sites"], title="Sites by status",
                                                        unit="sites"), "Sites by status"))
        if item.properties.get("geovigie:candidate"):
            section.notes.append("Candidates only: no validated dump detector ran on this layer.")
        return section
    table_path = _asset_path(item, "table")
    frame = pd.read_csv(table_path, dtype={"zone_id": str}) if table_path else pd.DataFrame()
    zones = _zones(item)
    section.figures += _raster_figure(index, item, zones)
    illustrative = bool(item.properties.get("geovigie:illustrative_reference", False))
    covered = frame[frame["status"] == "covered"] if "status" in frame.columns else frame
    unobserved = frame.loc[frame["status"] != "covered"] if "status" in frame.columns else frame.iloc[:0]
    if len(unobserved):
        names = [str(n) for n in unobserved["zone_name"]]
        shown_names = ", ".join(names[:20]) + (f" … and {len(names) - 20} more" if len(names) > 20 else "")
        section.notes.append(f"{len(unobserved)} of {len(frame)} zones not or not enough observed: pas de données "
                             f"(no figure, not 0): {shown_names}.")
    if kind == "vegetation":
        shown = covered
        section.figures.append(Figure(bar_chart_png(shown, "zone_name", ["dense_vegetation_share",
                                                                          "sparse_vegetation_share"],
                                                    title="Vegetation share of the observed area", unit="share"),
                                      "Dense and sparse vegetation per zone (zones seen by the image only)"))
    elif kind == "zan":
        columns = ["artificialised_ha", "artificialised_ha_no_mmu", "renaturalised_ha"]
        section.figures.append(Figure(bar_chart_png(covered, "zone_name", columns,
                                                    title="Land artificialised / renaturalised", unit="ha"),
                                      "Hectares per zone, with and without minimum mapping units"))
        if illustrative:
            section.notes.append("The reference consumption table is ILLUSTRATIVE: the trajectory columns are not "
                                 "official figures.")
    elif kind == "heat-island":
        top = covered.sort_values("mean", ascending=False).head(15)
        section.figures.append(Figure(bar_chart_png(top, "zone_name", ["mean", "p90"],
                                                    title="Hottest zones: intensity above the rural reference",
                                                    unit="°C"), "The 15 zones with the highest mean intensity"))
        frame = top
    section.tables.append(Table(frame, "Per-zone figures", f"{item.id}.csv", illustrative=illustrative))
    return section


def report(settings: Settings, out_dir: str | Path | None = None, *, title: str = "Diagnostic territorial",
           territory: str = "sample territories", period: str = "") -> Path:
    """Write the report of every diagnostic published in `settings.results_dir`; returns the page's path.

    Raises:
        EmptySearchError: no diagnostic has been published yet.
    """
    store = results_store_for(settings)
    index = LayerIndex(store)
    items = [store.get(RESULTS_COLLECTION, layer_id) for layer_id in index.ids()]
    found = [(str(i.properties["geovigie:diagnostic"]), i) for i in items
             if i.properties.get("geovigie:diagnostic") in ORDER]
    if not found:
        raise EmptySearchError(f"no diagnostic published in {settings.results_dir}: run `geovigie diagnose ...` "
                               "or `geovigie demo` first")
    found.sort(key=lambda pair: (ORDER.index(pair[0]), pair[1].id))
    sections = [_section(kind, item, index) for kind, item in found]
    sources = sorted({json.dumps(link.title or link.href) for _, item in found for link in item.links
                      if link.rel == "derived_from"})
    sources = ["Copernicus Sentinel-2 (Theia/MAJA L2A), USGS Landsat Collection 2 L2 surface temperature, IGN "
               "LiDAR HD, IGN odeon land-cover labels, IGN Admin Express (Licence Ouverte / Etalab)",
               f"{len(sources)} input layers; every layer's STAC item lists its inputs and processing"]
    page = Report(title, territory, period, sections, sources)
    return write_report(page, Path(out_dir) if out_dir else settings.data_dir / "report")
