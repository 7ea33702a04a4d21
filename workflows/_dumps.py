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
import numpy as np
import pandas as pd
import pystac

from geovigie.atomic import folder_lock
from geovigie.catalog.stac import check_id
from geovigie.diagnostics import (
    CANDIDATE_NOTE,
    DEFAULT_MIN_HEIGHT_M,
    MIN_OBSERVED_SHARE,
    STATUS_LABELS_FR,
    STATUSES,
    DetectorLayer,
    alerts,
    check_min_observed,
    check_site_options,
    detector_input,
    extract_sites,
    history_table,
    join_cut_pieces,
    observed_share,
    sensitive_zones,
    site_volumes,
    track,
    write_csv,
    write_sites,
    write_vector,
)
from geovigie.settings import Settings
from geovigie.tiles import (
    Layer,
    LayerSpec,
    Provenance,
    VectorStyle,
    publish_vector_layer,
    results_store_for,
)
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
    note: str = ""
    """Why the sites are « candidats » (or what validated the detector); empty for a user's validated layer."""


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
    layer: str | Path | pystac.Item | Layer | DetectorLayer,
    settings: Settings,
    *,
    watch: str,
    pass_date: date | datetime,
    candidate: bool | None = None,
    threshold: float = 0.5,
    class_value: int | None = None,
    class_name: str | None = None,
    bundle: str | Path | None = None,
    min_area_m2: float = 20.0,
    zones: gpd.GeoDataFrame | None = None,
    dsm: str | Path | None = None,
    dtm: str | Path | None = None,
    sensitive: Mapping[str, gpd.GeoDataFrame] | None = None,
    source_note: str = "",
    min_height_m: float = DEFAULT_MIN_HEIGHT_M,
    min_observed: float = MIN_OBSERVED_SHARE,
) -> DumpPassResult:
    """Process one pass of a dump probability or class layer for the watch `watch`.

    A pass that observed only part of the area (nodata over clouds, a swath edge, a missing tile) does not remove
    the earlier sites it could not see: an earlier site not found again is "not_observed" (« non observé », kept
    with its id and carried on) when less than `min_observed` of its footprint's pixels hold data in `layer`, and
    "removed" only when at least that share was observed. A layer of nodata only records no pass at all.

    One pass of a watch runs at a time (a lock on the watch's folder): two runs of the same pass at once leave one
    consistent set of snapshot, exports and published layer, the last one's.

    Args:
        layer: a model bundle's probability COG (value / 250; several bands: one per class, read on the dump
            class's), its class COG, the STAC item of a published prediction, or any single-band stand-in.
        settings: where state, exports and the published layer go.
        watch: name of the area followed (a plain id).
        pass_date: date of the imagery.
        candidate: None: « candidats » unless the bundle card says the detector was validated on held-out field
            labels; True: candidates whatever the card; False: the caller says the layer is a validated detector's
            output (refused when the layer names a bundle whose card does not say so).
        threshold: probability threshold (a pixel at exactly the threshold counts).
        class_value: class of the sites in a class layer.
        class_name: the dump class by name (band of a probability layer, class of a class layer); default: the
            card's positive class.
        bundle: the bundle (folder or card.json) that wrote `layer`, when its STAC item is not given.
        min_area_m2: smallest site kept.
        zones: communes for the INSEE code and name of each site.
        dsm: surface model (e.g. IGN LiDAR HD MNS) for volumes, with `dtm`.
        dtm: terrain model.
        sensitive: layers to measure distances to (Natura 2000, ZNIEFF, water...), by short name.
        source_note: what the layer is, written into the published layer's description.
        min_height_m: height above terrain a pixel must exceed to count in a volume (its whole height counts).
        min_observed: share of an earlier site's footprint the pass must observe to call it removed, in (0, 1].
    """
    started = time.perf_counter()
    day = _as_date(pass_date)
    folder = watch_folder(settings, watch)
    detector = detector_input(layer, bundle=bundle, class_name=class_name, class_value=class_value,
                              claimed_validated=candidate is False)
    candidate = not detector.validated if candidate is None else bool(candidate)
    check_site_options(threshold, detector.class_value, min_area_m2)  # before the lock creates the watch's folder
    check_min_observed(min_observed)
    with folder_lock(folder):
        return _dump_pass(detector, settings, folder, watch, day, candidate, started, threshold=threshold,
                          min_area_m2=min_area_m2, zones=zones, dsm=dsm, dtm=dtm, sensitive=sensitive,
                          source_note=source_note, min_height_m=min_height_m, min_observed=min_observed)


def _dump_pass(detector: DetectorLayer, settings: Settings, folder: Path, watch: str, day: date, candidate: bool,
               started: float, *, threshold: float, min_area_m2: float, zones: gpd.GeoDataFrame | None,
               dsm: str | Path | None, dtm: str | Path | None, sensitive: Mapping[str, gpd.GeoDataFrame] | None,
               source_note: str, min_height_m: float, min_observed: float) -> DumpPassResult:
    """`dump_sites` once the layer is resolved, holding the watch's lock."""
    sites = extract_sites(detector, threshold=threshold, min_area_m2=min_area_m2, pass_date=day,
                          candidate=candidate, zones=zones)
    blind = sites.attrs.get("valid_px") == 0  # nothing observed: earlier sites are not "removed" by this pass
    valid_px, nodata_px = int(sites.attrs.get("valid_px", 0)), int(sites.attrs.get("nodata_px", 0))
    previous = None if blind else _previous_snapshot(folder, day)

    def observed(footprints: gpd.GeoSeries) -> np.ndarray:
        return observed_share(detector, footprints)

    sites = join_cut_pieces(sites, previous, observed)  # one site seen through a gap, before volumes and distances
    sites = site_volumes(sites, dsm, dtm, min_height_m=min_height_m)
    if sensitive:
        sites = sensitive_zones(sites, sensitive)
    tracked, _ = track(previous, sites, observed=observed, min_observed=min_observed)
    if not blind:
        write_vector(tracked, folder / "passes" / f"{day:%Y%m%d}.gpkg")
    news = alerts(tracked)
    history = pd.DataFrame(history_table(tracked).drop(columns="geometry", errors="ignore"))
    exports = folder / "exports"
    files = write_sites(tracked, exports, f"sites-{day:%Y%m%d}")
    files["alerts_csv"] = write_csv(pd.DataFrame(news.drop(columns="geometry", errors="ignore")),
                                    exports / f"alerts-{day:%Y%m%d}.csv")
    files["history_csv"] = write_csv(history, exports / f"history-{day:%Y%m%d}.csv")
    kind = "candidats (not a validated dump detector)" if candidate else "dump sites"
    counts = {str(k): int(v) for k, v in tracked["status"].value_counts().items()} if not tracked.empty else {}
    found = ", ".join(f"{counts[s]} {s}" + (f" ({STATUS_LABELS_FR[s]})" if s == "not_observed" else "")
                      for s in STATUSES if s in counts)
    if blind:
        found = (f"no site: the layer holds only nodata ({sites.attrs.get('nodata_px', 0)} px); nothing was "
                 "observed, so no pass was recorded and earlier sites stay as they were")
    description = f"{kind[0].upper()}{kind[1:]} of pass {day:%Y-%m-%d}: {found}. "
    if detector.bundle_id:
        description += (f"Detector {detector.bundle_id}, class {detector.class_name!r} "
                        f"({detector.kind} band {detector.band}), threshold {threshold:g}. ")
    note = (detector.note or CANDIDATE_NOTE) if candidate else detector.note
    description += (note + " " if note else "") + source_note
    layer_id = f"dumps-{watch}"
    properties: dict[str, object] = {
        "geovigie:diagnostic": "dump-sites", "geovigie:watch": watch, "geovigie:candidate": candidate,
        "geovigie:status_counts": counts, "geovigie:observed": not blind,
        "geovigie:observed_share": round(valid_px / total_px, 4) if (total_px := valid_px + nodata_px) else None,
        "geovigie:min_observed": min_observed}
    if detector.bundle_id:
        properties["geovigie:detector"] = {
            "bundle": detector.bundle_id, "version": detector.bundle_version, "class": detector.class_name,
            "layer_kind": detector.kind, "band": detector.band, "class_value": detector.class_value,
            "threshold": threshold, "validated": detector.validated, "note": detector.note}
    title = f"{'Candidats: dump sites' if candidate else 'Dump sites'} {watch} {day:%Y-%m-%d}"
    published = publish_vector_layer(results_store_for(settings), files["geojson"], LayerSpec(
        layer_id, title, "vector", description=description.strip(), properties=properties,
        style=VectorStyle(color="#d7301f", label="site_id",
                          popup=("site_id", "status", "observed_share", "area_m2", "mean_confidence", "max_confidence",
                                 "volume_m3", "volume_uncertainty_m3", "volume_note", "commune_name", "first_seen",
                                 "last_seen", "candidate", "model_bundle")),
    ), Provenance(inputs=[str(detector.path.resolve())], lineage=description.strip(),
                  bundle_id=detector.bundle_id, bundle_card=detector.card_path,
                  datetime=datetime(day.year, day.month, day.day, tzinfo=UTC),
                  extra_assets={"gpkg": (files["gpkg"], "Sites (GeoPackage, EPSG:2154)"),
                                "csv": (files["csv"], "Sites for field teams (CSV, centroids)"),
                                "alerts": (files["alerts_csv"], "New or grown since the last pass (CSV)")}))
    return DumpPassResult(tracked, news, history, files, PublishedLayer(layer_id, kind, published, found or "no site"),
                          time.perf_counter() - started, note or "")
