"""Dump sites of a pass: vectorised, measured, located, tracked against earlier passes, exported and published.

State lives under DATA_DIR/diagnostics/dumps/<watch>/passes/<date>.gpkg, one tracked snapshot per pass. A pass is
always tracked against the latest snapshot strictly before its date, so rerunning a pass replaces it (idempotent)
and passes may be added late or out of order without corrupting the history.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geovigie.catalog.stac import check_id
from geovigie.diagnostics import (
    CANDIDATE_NOTE,
    DEFAULT_MIN_HEIGHT_M,
    alerts,
    extract_sites,
    history_table,
    sensitive_zones,
    site_volumes,
    track,
    write_csv,
    write_sites,
    write_vector,
)
from geovigie.settings import Settings
from geovigie.tiles import LayerSpec, Provenance, VectorStyle, publish_vector_layer, results_store_for
from geovigie.workflows._published import PublishedLayer

_PASS_FILE = re.compile(r"^(\d{8})\.gpkg$")


@dataclass
class DumpPassResult:
    """One processed pass: the tracked sites (removed ones included), the alerts and the files written."""

    sites: gpd.GeoDataFrame
    alerts: gpd.GeoDataFrame
    history: pd.DataFrame
    files: dict[str, Path] = field(default_factory=dict)
    layer: PublishedLayer | None = None
    seconds: float = 0.0


def _as_date(value: date | datetime) -> date:
    return value.astimezone(UTC).date() if isinstance(value, datetime) and value.tzinfo else (
        value.date() if isinstance(value, datetime) else value)


def watch_folder(settings: Settings, watch: str) -> Path:
    """Where a watch (an area followed pass after pass) keeps its snapshots and exports."""
    return settings.data_dir / "diagnostics" / "dumps" / check_id(watch, "watch name")


def _previous_snapshot(folder: Path, day: date) -> gpd.GeoDataFrame | None:
    earlier = sorted(p for p in (folder / "passes").glob("*.gpkg")
                     if _PASS_FILE.match(p.name) and p.stem < f"{day:%Y%m%d}")
    if not earlier:
        return None
    frame = gpd.read_file(earlier[-1], engine="pyogrio")
    frame.attrs["pass_date"] = datetime.strptime(earlier[-1].stem, "%Y%m%d").date().isoformat()
    return frame


def dump_sites(
    layer: str | Path,
    settings: Settings,
    *,
    watch: str,
    pass_date: date | datetime,
    candidate: bool,
    threshold: float = 0.5,
    class_value: int | None = None,
    min_area_m2: float = 20.0,
    zones: gpd.GeoDataFrame | None = None,
    dsm: str | Path | None = None,
    dtm: str | Path | None = None,
    sensitive: Mapping[str, gpd.GeoDataFrame] | None = None,
    source_note: str = "",
    min_height_m: float = DEFAULT_MIN_HEIGHT_M,
) -> DumpPassResult:
    """Process one pass of a dump probability or class layer for the watch `watch`.

    Args:
        layer: a model bundle's probability COG (value / 250) or a class COG (with `class_value`).
        settings: where state, exports and the published layer go.
        watch: name of the area followed (a plain id).
        pass_date: date of the imagery.
        candidate: True unless `layer` is the output of a validated dump model: every output then says so.
        threshold: probability threshold.
        class_value: class of the sites in a class layer.
        min_area_m2: smallest site kept.
        zones: communes for the INSEE code and name of each site.
        dsm: surface model (e.g. IGN LiDAR HD MNS) for volumes, with `dtm`.
        dtm: terrain model.
        sensitive: layers to measure distances to (Natura 2000, ZNIEFF, water...), by short name.
        source_note: what the layer is, written into the published layer's description.
        min_height_m: height above terrain a pixel must exceed to count in a volume (its whole height counts).
    """
    started = time.perf_counter()
    day = _as_date(pass_date)
    folder = watch_folder(settings, watch)
    sites = extract_sites(layer, threshold=threshold, class_value=class_value, min_area_m2=min_area_m2,
                          pass_date=day, candidate=candidate, zones=zones)
    sites = site_volumes(sites, dsm, dtm, min_height_m=min_height_m)
    if sensitive:
        sites = sensitive_zones(sites, sensitive)
    tracked, _ = track(_previous_snapshot(folder, day), sites)
    snapshot = folder / "passes" / f"{day:%Y%m%d}.gpkg"
    write_vector(tracked, snapshot)
    news = alerts(tracked)
    history = pd.DataFrame(history_table(tracked).drop(columns="geometry", errors="ignore"))
    exports = folder / "exports"
    files = write_sites(tracked, exports, f"sites-{day:%Y%m%d}")
    files["alerts_csv"] = write_csv(pd.DataFrame(news.drop(columns="geometry", errors="ignore")),
                                    exports / f"alerts-{day:%Y%m%d}.csv")
    files["history_csv"] = write_csv(history, exports / f"history-{day:%Y%m%d}.csv")
    kind = "candidate sites (not a validated dump detector)" if candidate else "dump sites"
    counts = {str(k): int(v) for k, v in tracked["status"].value_counts().items()} if not tracked.empty else {}
    description = (f"{kind.capitalize()} of pass {day:%Y-%m-%d}: " + ", ".join(f"{n} {s}" for s, n in
                                                                              sorted(counts.items())) + ". ")
    description += (CANDIDATE_NOTE + " " if candidate else "") + source_note
    layer_id = f"dumps-{watch}"
    published = publish_vector_layer(results_store_for(settings), files["geojson"], LayerSpec(
        layer_id, f"{'Candidate dump sites' if candidate else 'Dump sites'} {watch} {day:%Y-%m-%d}", "vector",
        description=description.strip(),
        properties={"geovigie:diagnostic": "dump-sites", "geovigie:watch": watch, "geovigie:candidate": candidate,
                    "geovigie:status_counts": counts},
        style=VectorStyle(color="#d7301f", label="site_id",
                          popup=("site_id", "status", "area_m2", "volume_m3", "volume_uncertainty_m3", "volume_note",
                                 "commune_name", "first_seen", "last_seen", "candidate")),
    ), Provenance(inputs=[str(Path(layer).resolve())], lineage=description.strip(),
                  datetime=datetime(day.year, day.month, day.day, tzinfo=UTC),
                  extra_assets={"gpkg": (files["gpkg"], "Sites (GeoPackage, EPSG:2154)"),
                                "csv": (files["csv"], "Sites for field teams (CSV, centroids)"),
                                "alerts": (files["alerts_csv"], "New or grown since the last pass (CSV)")}))
    detail = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no site"
    return DumpPassResult(tracked, news, history, files,
                          PublishedLayer(layer_id, kind, published, detail), time.perf_counter() - started)
