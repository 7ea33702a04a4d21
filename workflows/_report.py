"""`geovigie report`: one page gathering the diagnostics published in the results store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pystac

from geovigie.diagnostics import Figure, Report, Section, Table, bar_chart_png, raster_map_png, write_report
from geovigie.errors import EmptySearchError
from geovigie.paths import safe_name
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


PLACES = {"gers": "Gers", "muenster": "Münster", "montpellier": "Montpellier", "slovenia": "Slovénie"}


def _when(item: pystac.Item) -> str:
    """The date of what an item shows (not of its publication): its datetime, else its start–end."""
    props = item.properties
    start, end = props.get("start_datetime"), props.get("end_datetime")
    if start and end and str(start)[:10] != str(end)[:10]:
        return f"{str(start)[:10]} – {str(end)[:10]}"
    if start and not props.get("datetime"):
        return str(start)[:10]
    return str(props.get("datetime") or "")[:10]


def _scenes(item: pystac.Item, store_items: dict[str, pystac.Item], depth: int = 0) -> list[str]:
    """The input scenes an item was made from, by name (a Landsat product id, a Sentinel-2 tile): inputs that are
    themselves published layers are followed one level down."""
    names: list[str] = []
    for link in item.links:
        if link.rel != "derived_from":
            continue
        href = link.href.replace("\\", "/")
        parent = href.rstrip("/").split("/")[-2] if href.count("/") >= 1 else ""
        if parent in store_items and depth == 0:
            names += _scenes(store_items[parent], store_items, depth + 1)
            continue
        stem = Path(href).name.split(".")[0]
        names.append(stem)
    return list(dict.fromkeys(names))


def _caption(layer_title: str, item: pystac.Item, store_items: dict[str, pystac.Item]) -> str:
    scenes = _scenes(item, store_items)
    shown = ", ".join(scenes[:3]) + (f" (+{len(scenes) - 3})" if len(scenes) > 3 else "")
    return f"{layer_title} — {'source : ' + shown + ', ' if shown else ''}{_when(item)}".rstrip(", ")


def _raster_figure(index: LayerIndex, item: pystac.Item, zones: gpd.GeoDataFrame,
                   store_items: dict[str, pystac.Item]) -> list[Figure]:
    layer_id = item.properties.get("geovigie:raster_layer")
    if not layer_id or layer_id not in index.ids():
        return []
    layer = index.get(str(layer_id))
    legend = [(int(c["value"]), str(c["name"]), str(c["color"])) for c in layer.legend] or None
    source = store_items.get(str(layer_id), item)
    png = raster_map_png(layer.path, title=layer.title, zones=zones, legend=legend,
                         colormap=layer.colormap_name or "viridis",
                         vmin=layer.rescale[0] if layer.rescale else None,
                         vmax=layer.rescale[1] if layer.rescale else None, unit=layer.unit)
    return [Figure(png, _caption(layer.title, source, store_items))]


def _dump_figures(item: pystac.Item) -> list[Figure]:
    """Sites by status at each pass (from each site's status history) and the volume of the largest sites."""
    sites = _zones(item)
    if sites.empty:
        return []
    rows = []
    for _, site in sites.iterrows():
        history = site.get("status_history")
        history = json.loads(history) if isinstance(history, str) else history
        for day, status in (history or {str(site.get("pass_date", ""))[:10]: site["status"]}).items():
            rows.append({"pass": day, "status": status})
    counts = pd.DataFrame(rows).pivot_table(index="pass", columns="status", aggfunc="size", fill_value=0)
    order = [s for s in ("new", "grown", "persisting", "shrunk", "not_observed", "removed") if s in counts.columns]
    colors = {"new": "#e31a1c", "grown": "#8e0152", "persisting": "#ff7f00", "shrunk": "#fdbf6f",
              "not_observed": "#6baed6", "removed": "#8c8c8c"}
    names = {"new": "nouveaux", "grown": "agrandis", "persisting": "persistants", "shrunk": "réduits",
             "not_observed": "non observés", "removed": "disparus"}
    counts = counts[order].reset_index()
    figures = [Figure(bar_chart_png(counts, "pass", order, title="Sites par statut et par passage", unit="sites",
                                    stacked=True, colors=[colors[s] for s in order], labels=[names[s] for s in order]),
                      f"Sites par statut à chaque passage ({len(counts)} passage(s), {len(sites)} sites)")]
    if "volume_m3" in sites and sites["volume_m3"].notna().any():
        top = sites.sort_values("area_m2", ascending=False).head(15).copy()
        top["label"] = [f"{str(i)[-6:]} ({s})" for i, s in zip(top["site_id"], top["status"], strict=True)]
        figures.append(Figure(bar_chart_png(top, "label", ["volume_m3"], title="Volume des plus grands sites",
                                            unit="m³", colors=["#8c510a"]),
                              "Volume au-dessus du terrain (MNS − MNT) des 15 plus grands sites ; « pas de données » : "
                              "pas de modèle de surface sur le site"))
    return figures


def _section(kind: str, item: pystac.Item, index: LayerIndex, store_items: dict[str, pystac.Item]) -> Section:
    description = str(item.properties.get("description", ""))
    place = str(item.properties.get("geovigie:place") or item.properties.get("geovigie:watch")
                or re.sub(r"^(vegetation-zones|zan-zones|uhi-zones|dumps)-", "", item.id))
    place = PLACES.get(place.split("-")[0], place)
    raster = store_items.get(str(item.properties.get("geovigie:raster_layer")), item)
    section = Section(f"{TITLES[kind]} — {place} — {_when(raster if raster is not item else item)}", description)
    if kind == "dump-sites":
        csv = _asset_path(item, "csv")
        frame = pd.read_csv(csv) if csv else pd.DataFrame()
        columns = [c for c in ("site_id", "status", "area_m2", "volume_m3", "volume_uncertainty_m3", "valid_fraction",
                               "commune_name", "first_seen", "last_seen", "volume_note") if c in frame.columns]
        section.figures += _dump_figures(item)
        section.tables.append(Table(frame[columns], "Sites du dernier passage (une ligne par site)",
                                    f"{safe_name(item.id)}.csv"))
        if item.properties.get("geovigie:candidate"):
            section.notes.append("Candidates only: no validated dump detector ran on this layer.")
        return section
    table_path = _asset_path(item, "table")
    frame = pd.read_csv(table_path, dtype={"zone_id": str}) if table_path else pd.DataFrame()
    zones = _zones(item)
    section.figures += _raster_figure(index, item, zones, store_items)
    illustrative = bool(item.properties.get("geovigie:illustrative_reference", False))
    covered = frame[frame["status"] == "covered"] if "status" in frame.columns else frame
    unobserved = frame.loc[frame["status"] != "covered"] if "status" in frame.columns else frame.iloc[:0]
    if len(unobserved):
        names = [str(n) for n in unobserved["zone_name"]]
        shown_names = ", ".join(names[:20]) + (f" … and {len(names) - 20} more" if len(names) > 20 else "")
        section.notes.append(f"{len(unobserved)} of {len(frame)} zones not or not enough observed: pas de données "
                             f"(no figure, not 0): {shown_names}.")
    if kind == "vegetation":
        # every zone listed: the ones not (enough) observed say « pas de données », never a bar of 0
        observed = frame["status"] == "covered" if "status" in frame.columns else frame["covered_fraction"] > 0
        section.figures.append(Figure(bar_chart_png(frame.assign(
            dense_vegetation_share=frame["dense_vegetation_share"].where(observed),
            sparse_vegetation_share=frame["sparse_vegetation_share"].where(observed)),
            "zone_name", ["dense_vegetation_share", "sparse_vegetation_share"],
            title="Part de végétation de la surface observée", unit="part (0–1)", colors=["#1a9850", "#a6d96a"]),
            "Végétation dense et clairsemée par zone (« pas de données » : zone non vue par l'image)"))
    elif kind == "zan":
        columns = ["artificialised_ha", "artificialised_ha_no_mmu", "renaturalised_ha"]
        section.figures.append(Figure(bar_chart_png(covered, "zone_name", columns,
                                                    title="Surfaces artificialisées / renaturées", unit="ha"),
                                      "Hectares par zone observée, avec et sans unités minimales de cartographie"))
        if illustrative:
            section.notes.append("The reference consumption table is ILLUSTRATIVE: the trajectory columns are not "
                                 "official figures.")
    elif kind == "heat-island":
        top = covered.sort_values("mean", ascending=False).head(15)
        section.figures.append(Figure(bar_chart_png(top, "zone_name", ["mean", "p90"],
                                                    title="Mailles les plus chaudes : écart à la référence rurale",
                                                    unit="°C", colors=["#fd8d3c", "#bd0026"]),
                                      "Les 15 mailles à l'intensité moyenne la plus forte"))
        frame = top
    section.tables.append(Table(frame, "Chiffres par zone", f"{safe_name(item.id)}.csv", illustrative=illustrative))
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
    store_items = {item.id: item for item in items}
    sections = [_section(kind, item, index, store_items) for kind, item in found]
    sources = sorted({json.dumps(link.title or link.href) for _, item in found for link in item.links
                      if link.rel == "derived_from"})
    sources = ["Copernicus Sentinel-2 (Theia/MAJA L2A), USGS Landsat Collection 2 L2 surface temperature, IGN "
               "LiDAR HD, IGN odeon land-cover labels, IGN Admin Express (Licence Ouverte / Etalab)",
               f"{len(sources)} input layers; every layer's STAC item lists its inputs and processing"]
    page = Report(title, territory, period, sections, sources)
    return write_report(page, Path(out_dir) if out_dir else settings.data_dir / "report")
