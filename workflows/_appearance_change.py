"""Dump candidates from two image passes of a watch: found, located, exported and published.

Files go to DATA_DIR/diagnostics/dumps/<watch>/exports/candidats-appearance-<date>.{geojson,gpkg,csv}; the layer
`dumps-appearance-<watch>` is titled « Candidats » and says in its description that nothing in it is validated.
Candidates are not tracked into the watch's pass history: only a validated layer's sites are.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import geopandas as gpd

from geovigie.diagnostics import (
    APPEARANCE_NOTE,
    DEFAULT_BLOCK_PX,
    DEFAULT_MIN_NDVI_DROP,
    DEFAULT_MIN_TEXTURE,
    AppearanceChange,
    appearance_change_candidates,
    sensitive_zones,
    write_sites,
)
from geovigie.progress import Progress
from geovigie.settings import Settings
from geovigie.tiles import LayerSpec, VectorStyle
from geovigie.workflows._dump_change import publish_candidates
from geovigie.workflows._dumps import watch_folder
from geovigie.workflows._published import PublishedLayer


@dataclass
class AppearanceChangeResult:
    """Candidates of one pair of image passes, what was measured, the files written and the published layer."""

    change: AppearanceChange
    files: dict[str, Path] = field(default_factory=dict)
    layer: PublishedLayer | None = None
    seconds: float = 0.0

    @property
    def candidates(self) -> gpd.GeoDataFrame:
        """The candidate rows (the dump site columns plus NDVI drop, BSI rise, brightness rise, texture)."""
        return self.change.candidates


def appearance_change(
    before: str | Path,
    after: str | Path,
    settings: Settings,
    *,
    watch: str,
    pass_date: date,
    min_ndvi_drop: float = DEFAULT_MIN_NDVI_DROP,
    min_texture: float = DEFAULT_MIN_TEXTURE,
    window_px: int = 3,
    min_area_m2: float = 400.0,
    require_nir: bool = False,
    band_names: Sequence[str] | None = None,
    exclude: gpd.GeoDataFrame | None = None,
    zones: gpd.GeoDataFrame | None = None,
    sensitive: Mapping[str, gpd.GeoDataFrame] | None = None,
    block_px: int = DEFAULT_BLOCK_PX,
    progress: Progress = False,
) -> AppearanceChangeResult:
    """Find ground that turned bare and heterogeneous between two image passes; export it as « candidats ».

    Args:
        before: multi-band image (Sentinel-2 bands named B02..., or an orthophoto RGB / RGB + NIR) of the
            earlier pass.
        after: image of the later pass (same CRS; resampled onto the coarser grid when it does not line up).
        settings: where exports and the published layer go.
        watch: name of the area followed (a plain id).
        pass_date: date of the later pass.
        min_ndvi_drop: NDVI fall a pixel must exceed (with NIR).
        min_texture: after-pass local brightness std / mean a pixel must exceed.
        window_px: side of the texture window, pixels (odd, >= 3).
        min_area_m2: smallest candidate kept.
        require_nir: refuse passes without a NIR band instead of falling back on brightness.
        band_names: names of the bands of both passes in order (red, green, blue, nir, swir16, B04..., other),
            for files whose bands carry no description.
        exclude: footprints (buildings, quarries already known...) masked out of the detection.
        zones: communes for the INSEE code and name of each candidate.
        sensitive: layers to measure distances to (Natura 2000, ZNIEFF, water...), by short name.
        block_px: side of the blocks read at once, pixels (memory grows with its square, not the raster's size).
        progress: draw a bar per pass over the blocks (True), nothing, or report to a hook.
    """
    started = time.perf_counter()
    folder = watch_folder(settings, watch)
    change = appearance_change_candidates(before, after, pass_date=pass_date, min_ndvi_drop=min_ndvi_drop,
                                          min_texture=min_texture, window_px=window_px, min_area_m2=min_area_m2,
                                          require_nir=require_nir, band_names=band_names, exclude=exclude,
                                          zones=zones, block_px=block_px,
                                          progress=progress)
    if sensitive:
        change = replace(change, candidates=sensitive_zones(change.candidates, sensitive))
    candidates = change.candidates
    files = write_sites(candidates, folder / "exports", f"candidats-appearance-{pass_date:%Y%m%d}")
    found = f"{len(candidates)} candidats, {candidates['area_m2'].sum():.0f} m²" if len(candidates) else "no candidate"
    weakest = min(change.fit_r.values())
    detail = f"{found}; bands {', '.join(change.bands)}; weakest band fit r = {weakest:.2f}" + (
        "" if change.comparable else " (passes hardly comparable: cloud, haze or season; expect false candidates)")
    rule = (f"NDVI fell more than {min_ndvi_drop:g}" if "nir" in change.bands else "brightness rose")
    description = (f"Candidats (not validated): ground whose appearance turned bare and heterogeneous ({rule}, "
                   f"after-pass texture above {min_texture:g} in {window_px} × {window_px} px) between "
                   f"{Path(before).name} and {Path(after).name} "
                   f"(pass {pass_date:%Y-%m-%d}); {detail}. {APPEARANCE_NOTE}")
    layer_id = f"dumps-appearance-{watch}"
    published = publish_candidates(settings, files, LayerSpec(
        layer_id, f"Candidats: appearance change {watch} {pass_date:%Y-%m-%d}", "vector", description=description,
        properties={"geovigie:diagnostic": "dump-appearance-candidates", "geovigie:watch": watch,
                    "geovigie:candidate": True, "geovigie:normalisation_r": round(weakest, 4)},
        style=VectorStyle(color="#e6550d", label="detection_id",
                          popup=("detection_id", "area_m2", "ndvi_drop_mean", "bsi_rise_mean", "texture_mean",
                                 "commune_name", "candidate", "note")),
    ), (before, after), pass_date)
    return AppearanceChangeResult(change, files, PublishedLayer(layer_id, "candidats (appearance change)", published,
                                                                detail), time.perf_counter() - started)
