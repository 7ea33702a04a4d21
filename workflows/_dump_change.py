"""Dump candidates from two height models of a watch: found, measured, located, exported and published.

Files go to DATA_DIR/diagnostics/dumps/<watch>/exports/candidats-change-<date>.{geojson,gpkg,csv}; the layer
`dumps-change-<watch>` is titled « Candidats » and says in its description that nothing in it is validated.
Candidates are not tracked into the watch's pass history: only a validated layer's sites are.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

import geopandas as gpd
import pystac

from geovigie.diagnostics import (
    CHANGE_NOTE,
    DEFAULT_BLOCK_PX,
    DEFAULT_MIN_RISE_M,
    HeightChange,
    height_change_candidates,
    sensitive_zones,
    write_sites,
)
from geovigie.progress import Progress
from geovigie.settings import Settings
from geovigie.tiles import LayerSpec, Provenance, VectorStyle, publish_vector_layer, results_store_for
from geovigie.workflows._dumps import watch_folder
from geovigie.workflows._published import PublishedLayer


@dataclass
class DumpChangeResult:
    """Candidates of one pair of passes, what was measured, the files written and the published layer."""

    change: HeightChange
    files: dict[str, Path] = field(default_factory=dict)
    layer: PublishedLayer | None = None
    seconds: float = 0.0

    @property
    def candidates(self) -> gpd.GeoDataFrame:
        """The candidate rows (the dump site columns plus the rise threshold, offset and noise)."""
        return self.change.candidates


def dump_change(
    before: str | Path,
    after: str | Path,
    settings: Settings,
    *,
    watch: str,
    pass_date: date,
    min_rise_m: float = DEFAULT_MIN_RISE_M,
    min_area_m2: float = 20.0,
    buildings: gpd.GeoDataFrame | None = None,
    zones: gpd.GeoDataFrame | None = None,
    sensitive: Mapping[str, gpd.GeoDataFrame] | None = None,
    block_px: int = DEFAULT_BLOCK_PX,
    progress: Progress = False,
) -> DumpChangeResult:
    """Find ground that rose between `before` and `after` (height models) and export it as « candidats ».

    Args:
        before: height model (DSM) of the earlier pass.
        after: height model of the later pass (same CRS; resampled onto `before`'s grid when it does not line up).
        settings: where exports and the published layer go.
        watch: name of the area followed (a plain id).
        pass_date: date of the later pass.
        min_rise_m: rise a pixel must exceed to count, metres.
        min_area_m2: smallest candidate kept.
        buildings: building footprints, masked out of the detection.
        zones: communes for the INSEE code and name of each candidate.
        sensitive: layers to measure distances to (Natura 2000, ZNIEFF, water...), by short name.
        block_px: side of the blocks read at once, pixels (memory grows with its square, not the raster's size).
        progress: draw a bar per pass over the blocks (True), nothing, or report to a hook.
    """
    started = time.perf_counter()
    folder = watch_folder(settings, watch)
    change = height_change_candidates(before, after, pass_date=pass_date, min_rise_m=min_rise_m,
                                      min_area_m2=min_area_m2, buildings=buildings, zones=zones,
                                      block_px=block_px, progress=progress)
    candidates = sensitive_zones(change.candidates, sensitive) if sensitive else change.candidates
    change = replace(change, candidates=candidates)
    files = write_sites(candidates, folder / "exports", f"candidats-change-{pass_date:%Y%m%d}")
    found = (f"{len(candidates)} candidats, {candidates['volume_m3'].sum():.0f} m³ added" if len(candidates)
             else "no candidate")
    detail = f"{found}; noise {change.noise_m:.3f} m, offset {change.vertical_offset_m:+.3f} m"
    description = (f"Candidats (not validated): ground that rose more than {min_rise_m:g} m between "
                   f"{Path(before).name} and {Path(after).name} (pass {pass_date:%Y-%m-%d}); {detail}. {CHANGE_NOTE}")
    layer_id = f"dumps-change-{watch}"
    published = publish_candidates(settings, files, LayerSpec(
        layer_id, f"Candidats: height change {watch} {pass_date:%Y-%m-%d}", "vector", description=description,
        properties={"geovigie:diagnostic": "dump-change-candidates", "geovigie:watch": watch,
                    "geovigie:candidate": True, "geovigie:noise_m": round(change.noise_m, 4),
                    "geovigie:vertical_offset_m": round(change.vertical_offset_m, 4)},
        style=VectorStyle(color="#fd8d3c", label="detection_id",
                          popup=("detection_id", "area_m2", "volume_m3", "volume_uncertainty_m3", "height_max_m",
                                 "volume_note", "commune_name", "candidate", "note")),
    ), (before, after), pass_date)
    return DumpChangeResult(change, files, PublishedLayer(layer_id, "candidats (height change)", published, detail),
                            time.perf_counter() - started)


def publish_candidates(settings: Settings, files: dict[str, Path], spec: LayerSpec,
                       passes: tuple[str | Path, str | Path], pass_date: date) -> pystac.Item:
    """Publish change candidates written by `write_sites` as a vector layer dated by the later pass, with their
    GeoPackage and CSV as extra assets."""
    return publish_vector_layer(results_store_for(settings), files["geojson"], spec, Provenance(
        inputs=[str(Path(p).resolve()) for p in passes], lineage=spec.description,
        datetime=datetime(pass_date.year, pass_date.month, pass_date.day, tzinfo=UTC),
        extra_assets={"gpkg": (files["gpkg"], "Candidats (GeoPackage, EPSG:2154)"),
                      "csv": (files["csv"], "Candidats for field teams (CSV, centroids)")}))
