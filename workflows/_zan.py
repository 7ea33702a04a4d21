"""ZAN accounting between two class maps, per zone, published as a change layer and a zone layer."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from geovigie.diagnostics import (
    CHANGE_CLASSES,
    DEFAULT_MIN_COVERAGE_TOTALS,
    ChangeSummary,
    ZanMapping,
    change_map,
    load_mapping,
    read_reference_consumption,
    write_csv,
    write_vector,
    zan_by_zone,
)
from geovigie.paths import safe_name
from geovigie.settings import Settings
from geovigie.tiles import LayerSpec, Provenance, VectorStyle, publish_layer, publish_vector_layer, results_store_for
from geovigie.workflows._published import PublishedLayer, layer_target, removed_on_failure


def hectare_scale(values: pd.Series) -> tuple[float, float]:
    """Colour scale of a hectare column: from 0 to the largest non-null value (0-1 ha when none is above 0)."""
    top = float(values.max(skipna=True)) if values.notna().any() else 0.0
    return 0.0, top if top > 0 else 1.0


@dataclass
class ZanResult:
    """Change summaries without and with MMU, the per-zone table and the published layers."""

    raw: ChangeSummary
    mmu: ChangeSummary
    table: pd.DataFrame
    layers: list[PublishedLayer] = field(default_factory=list)
    seconds: float = 0.0


def zan(
    before: str | Path,
    after: str | Path,
    settings: Settings,
    *,
    place: str,
    zones: gpd.GeoDataFrame,
    start: date,
    end: date,
    mapping: str | Path = "odeon-naf",
    reference: str | Path | None = None,
    mmu_building_m2: float = 200.0,
    mmu_other_m2: float = 500.0,
    min_coverage: float = DEFAULT_MIN_COVERAGE_TOTALS,
) -> ZanResult:
    """Land artificialised and renaturalised between two class maps, per zone, with and without MMU.

    Figures of zones observed on less than `min_coverage` of their area are null ("partial", "not_covered").
    A failed run removes the layer folders it created.
    """
    rules = load_mapping(mapping)
    stamp = f"{safe_name(place, 'place')}-{start:%Y}-{end:%Y}"
    table_ref = read_reference_consumption(reference) if reference else None
    with removed_on_failure(settings, f"zan-{stamp}", f"zan-zones-{stamp}"):
        return _zan(before, after, settings, place=place, zones=zones, start=start, end=end, rules=rules,
                    table_ref=table_ref, mmu_building_m2=mmu_building_m2, mmu_other_m2=mmu_other_m2,
                    min_coverage=min_coverage)


def _zan(before: str | Path, after: str | Path, settings: Settings, *, place: str, zones: gpd.GeoDataFrame,
         start: date, end: date, rules: ZanMapping, table_ref: pd.DataFrame | None, mmu_building_m2: float,
         mmu_other_m2: float, min_coverage: float) -> ZanResult:
    started = time.perf_counter()
    stamp = f"{safe_name(place, 'place')}-{start:%Y}-{end:%Y}"
    folder = layer_target(settings, f"zan-{stamp}").parent
    raw = change_map(before, after, rules, folder / "change_no_mmu.tif", apply_mmu=False)
    target = layer_target(settings, f"zan-{stamp}")
    kept = change_map(before, after, rules, target, mmu_building_m2=mmu_building_m2, mmu_other_m2=mmu_other_m2)
    table = zan_by_zone(zones, raw.path, kept.path, start=start, end=end, reference=table_ref,
                        mmu=(mmu_building_m2, mmu_other_m2), min_coverage=min_coverage)
    illustrative = bool(table_ref is not None and table_ref["illustrative"].any())
    rules_text = (f"mapping {rules.name} ({Path(rules.source).name}); MMU {mmu_building_m2:g} m² buildings, "
                  f"{mmu_other_m2:g} m² other features, applied to 4-connected change patches")
    note = " Reference consumption table ILLUSTRATIVE, not official figures." if illustrative else ""
    when: dict[str, Any] = {"start_datetime": datetime(start.year, start.month, start.day, tzinfo=UTC),
            "end_datetime": datetime(end.year, end.month, end.day, tzinfo=UTC)}
    result = ZanResult(raw, kept, table)
    published = publish_layer(results_store_for(settings), target, LayerSpec(
        f"zan-{stamp}", f"ZAN change {place} {start:%Y}–{end:%Y}", "classes", classes=CHANGE_CLASSES,
        description=f"Artificialised and renaturalised land; {rules_text}.{note}",
        properties={"geovigie:diagnostic": "zan-change"},
    ), Provenance(inputs=[str(Path(before).resolve()), str(Path(after).resolve())], lineage=rules_text,
                  extra_assets={"change_no_mmu": (raw.path, "Change codes without MMU")}, **when))
    result.layers.append(PublishedLayer(published.id, "ZAN change", published,
                                        f"{kept.artificialised_m2:,.0f} m² artificialised "
                                        f"({raw.artificialised_m2:,.0f} m² without MMU), "
                                        f"{kept.renaturalised_m2:,.0f} m² renaturalised"))
    csv = write_csv(table, folder.parent / f"zan-zones-{stamp}" / "zones.csv")
    figures = zones[["zone_id", "geometry"]].merge(table, on="zone_id")
    features = write_vector(figures, csv.parent / "data.geojson")
    published = publish_vector_layer(results_store_for(settings), features, LayerSpec(
        f"zan-zones-{stamp}", f"ZAN per zone {place} {start:%Y}–{end:%Y}", "vector",
        description=f"Hectares artificialised / renaturalised / net per zone, with and without MMU; {rules_text}."
                    + note,
        properties={"geovigie:diagnostic": "zan", "geovigie:illustrative_reference": illustrative,
                    "geovigie:raster_layer": f"zan-{stamp}"},
        style=VectorStyle(color_by="artificialised_ha", colormap_name="reds", unit="ha", label="zone_name",
                          rescale=hectare_scale(table["artificialised_ha"]),
                          popup=("zone_name", "artificialised_ha", "renaturalised_ha", "net_ha", "status",
                                 "covered_fraction", "artificialised_ha_no_mmu", "net_ha_per_year")),
    ), Provenance(inputs=[str(Path(before).resolve()), str(Path(after).resolve())], lineage=rules_text,
                  extra_assets={"table": (csv, "ZAN per zone (CSV)")}, **when))
    covered = int((table["status"] == "covered").sum())
    result.layers.append(PublishedLayer(published.id, "ZAN per zone", published,
                                        f"{len(table)} zones, {covered} covered"))
    result.seconds = time.perf_counter() - started
    return result
