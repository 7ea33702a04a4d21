"""ZAN accounting (Zéro Artificialisation Nette): land artificialised and renaturalised between two class maps.

A declared mapping (OCS GE style, a TOML table) sorts each class into building / other artificial / natural /
nodata. The change map codes each pixel; minimum mapping units (200 m² buildings, 500 m² other features by default)
are applied to the change patches before counting, so single-pixel noise is not land take. Figures per zone come
from exactextract (partial pixels counted).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from pydantic import BaseModel, ConfigDict
from rasterio.features import rasterize, shapes
from shapely.geometry import shape

from geovigie.classes import ClassInfo, palette
from geovigie.cog import cog_writer
from geovigie.config_file import read_toml, validate
from geovigie.diagnostics._zonal_stats import COVERED, DEFAULT_MIN_COVERAGE_TOTALS, _listed, zonal_classes
from geovigie.errors import (
    DiagnosticsWarning,
    GridMismatchError,
    InputNotFoundError,
    InvalidInputError,
    InvalidRasterError,
)
from geovigie.types import NODATA_CLASS

MAPPINGS_DIR = Path(__file__).resolve().parent / "zan_mappings"
STABLE_NATURAL, STABLE_ARTIFICIAL, ARTIFICIALISED, RENATURALISED = 0, 1, 2, 3
CHANGE_CLASSES = (
    ClassInfo(value=STABLE_NATURAL, name="stable, not artificial", color="#d9f0a3"),
    ClassInfo(value=STABLE_ARTIFICIAL, name="stable, artificial", color="#969696"),
    ClassInfo(value=ARTIFICIALISED, name="artificialised", color="#e31a1c"),
    ClassInfo(value=RENATURALISED, name="renaturalised", color="#1a9850"),
)
ZAN_TARGET_REDUCTION = 0.5
"""The 2021–2031 consumption must be at most half the 2011–2021 consumption (loi Climat et résilience)."""


@dataclass(frozen=True)
class ZanMapping:
    """Class values of a nomenclature sorted into ZAN categories."""

    name: str
    building: frozenset[int]
    artificial: frozenset[int]
    natural: frozenset[int]
    nodata: frozenset[int]
    source: str

    @property
    def known(self) -> frozenset[int]:
        """Every value the mapping declares."""
        return self.building | self.artificial | self.natural | self.nodata


class _MappingTable(BaseModel):
    """A mapping file as written: class values per ZAN category."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    building: list[int] = []
    artificial: list[int] = []
    natural: list[int] = []
    nodata: list[int] = []


def load_mapping(path_or_name: str | Path) -> ZanMapping:
    """A mapping from a TOML file, or a shipped one by name (`odeon-naf`, `odeon-urbain`, `landcover-s2l1c-slovenia`).

    Raises:
        InputNotFoundError: no such file or shipped mapping.
        InvalidInputError: not TOML, an unknown key, a value that is not a class number, or a value declared in two
            categories.
    """
    path = Path(path_or_name)
    if not path.is_file():
        path = MAPPINGS_DIR / f"{path_or_name}.toml"
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in MAPPINGS_DIR.glob("*.toml")))
        raise InputNotFoundError(f"no ZAN mapping {path_or_name!r}: give a TOML file or one of {shipped}")
    table = validate(_MappingTable, read_toml(path, "ZAN mapping"), path)
    groups = {key: frozenset(getattr(table, key)) for key in ("building", "artificial", "natural", "nodata")}
    seen: dict[int, str] = {}
    for key, values in groups.items():
        for value in values:
            if value in seen:
                raise InvalidInputError(f"{path}: class {value} is both {seen[value]} and {key}")
            seen[value] = key
    return ZanMapping(table.name or path.stem, source=str(path), **groups)


@dataclass(frozen=True)
class ChangeSummary:
    """What a change map holds, in m²."""

    path: Path
    artificialised_m2: float
    renaturalised_m2: float
    mmu_building_m2: float | None
    mmu_other_m2: float | None

    @property
    def net_m2(self) -> float:
        """Artificialised minus renaturalised."""
        return self.artificialised_m2 - self.renaturalised_m2


def _read_pair(before: Path, after: Path) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    for path in (before, after):
        if not Path(path).is_file():
            raise InputNotFoundError(f"class map not found: {path}")
    with rasterio.open(before) as a, rasterio.open(after) as b:
        for src, path in ((a, before), (b, after)):
            if src.count != 1:
                raise InvalidRasterError(f"{path}: {src.count} bands; a ZAN class map has one band of classes")
        differs = [what for what, same in (("CRS", a.crs == b.crs), ("shape", a.shape == b.shape),
                                           ("transform", a.transform.almost_equals(b.transform))) if not same]
        if differs:
            raise GridMismatchError(f"{before} and {after} are not on the same grid ({', '.join(differs)} differ): "
                                    "resample one onto the other first")
        if a.crs is None or not a.crs.is_projected:
            raise GridMismatchError(f"{before}: ZAN areas need a projected CRS (got {a.crs})")
        return a.read(1), b.read(1), {"crs": a.crs, "transform": a.transform, "res": a.res}


def _check_classes(values: np.ndarray, mapping: ZanMapping, path: Path) -> None:
    unknown = sorted(set(np.unique(values).tolist()) - mapping.known)
    if unknown:
        raise InvalidInputError(f"{path}: classes {unknown} are not in the ZAN mapping {mapping.source}; "
                                "declare them as building, artificial, natural or nodata")


def _apply_mmu(mask: np.ndarray, transform: object, mmu_m2: float) -> np.ndarray:
    """Keep the 4-connected patches of `mask` of at least `mmu_m2` (areas of the vectorised patches)."""
    if mmu_m2 <= 0 or not mask.any():
        return mask
    kept = [geometry for geometry, value in shapes(mask.astype(np.uint8), mask=mask, connectivity=4,
                                                   transform=transform)
            if value == 1 and shape(geometry).area >= mmu_m2]
    if not kept:
        return np.zeros_like(mask)
    return rasterize(kept, out_shape=mask.shape, transform=transform, dtype=np.uint8).astype(bool) & mask


def change_map(before: str | Path, after: str | Path, mapping: ZanMapping, out_path: str | Path, *,
               mmu_building_m2: float = 200.0, mmu_other_m2: float = 500.0, apply_mmu: bool = True) -> ChangeSummary:
    """Write the uint8 change COG (0 stable natural, 1 stable artificial, 2 artificialised, 3 renaturalised, 255
    nodata on either date) of two class maps on the same grid, MMUs applied to change patches when `apply_mmu`.

    A change patch whose artificial side is a building class gets the building MMU; others the other MMU. Patches
    below their MMU are counted as stable.

    Raises:
        GridMismatchError: the maps differ in CRS, transform or shape.
        InvalidInputError: a class is missing from the mapping.
    """
    for name, value in (("building", mmu_building_m2), ("other", mmu_other_m2)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise InvalidInputError(f"minimum mapping unit ({name}) {value!r}: must be a finite area >= 0 m² "
                                    f"(--mmu-{name})")
    before, after = Path(before), Path(after)
    a, b, grid = _read_pair(before, after)
    _check_classes(a, mapping, before)
    _check_classes(b, mapping, after)
    artificial = np.array(sorted(mapping.building | mapping.artificial), dtype=a.dtype)
    natural = np.array(sorted(mapping.natural), dtype=a.dtype)
    nodata = np.isin(a, list(mapping.nodata)) | np.isin(b, list(mapping.nodata))
    art_a, art_b = np.isin(a, artificial), np.isin(b, artificial)
    gained = np.isin(a, natural) & art_b & ~nodata
    lost = art_a & np.isin(b, natural) & ~nodata
    if apply_mmu:
        building = np.array(sorted(mapping.building), dtype=a.dtype)
        gained = (_apply_mmu(gained & np.isin(b, building), grid["transform"], mmu_building_m2)
                  | _apply_mmu(gained & ~np.isin(b, building), grid["transform"], mmu_other_m2))
        lost = (_apply_mmu(lost & np.isin(a, building), grid["transform"], mmu_building_m2)
                | _apply_mmu(lost & ~np.isin(a, building), grid["transform"], mmu_other_m2))
    codes = np.where(art_a, STABLE_ARTIFICIAL, STABLE_NATURAL).astype(np.uint8)
    codes[gained] = ARTIFICIALISED
    codes[lost] = RENATURALISED
    codes[nodata] = NODATA_CLASS
    pixel = abs(grid["res"][0] * grid["res"][1])  # type: ignore[index]
    profile = {"driver": "GTiff", "width": codes.shape[1], "height": codes.shape[0], "count": 1, "dtype": "uint8",
               "crs": grid["crs"], "transform": grid["transform"], "nodata": NODATA_CLASS}
    mmu_text = f"MMU {mmu_building_m2:g} m² buildings, {mmu_other_m2:g} m² other" if apply_mmu else "no MMU"
    with cog_writer(out_path, profile=profile, band_descriptions=[f"ZAN change ({mmu_text})"],
                    colormap=palette(CHANGE_CLASSES),
                    tags={"GEOVIGIE_INPUTS": f"{Path(before).name},{Path(after).name}", "ZAN_MAPPING": mapping.name,
                          "ZAN_MMU": mmu_text}) as dst:
        dst.write(codes[None])
    return ChangeSummary(Path(out_path), float(gained.sum() * pixel), float(lost.sum() * pixel),
                         mmu_building_m2 if apply_mmu else None, mmu_other_m2 if apply_mmu else None)


def read_reference_consumption(path: str | Path) -> pd.DataFrame:
    """A per-zone 2011–2021 consumption table: `zone_id`, `consumption_ha_2011_2021`, optional `illustrative`.

    Lines starting with `#` are comments; a file whose name or comments say ILLUSTRATIVE is flagged illustrative.
    """
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"reference consumption table not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
        table = pd.read_csv(path, comment="#", dtype={"zone_id": str})
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InvalidInputError(f"{path}: not a UTF-8 CSV table ({err})") from err
    missing = [c for c in ("zone_id", "consumption_ha_2011_2021") if c not in table.columns]
    if missing:
        raise InvalidInputError(f"{path}: columns {missing} missing (has {list(table.columns)})")
    values = pd.to_numeric(table["consumption_ha_2011_2021"], errors="coerce")
    bad = table.loc[values.isna() | ~np.isfinite(values) | (values < 0), "zone_id"].tolist()
    if bad:
        raise InvalidInputError(f"{path}: consumption_ha_2011_2021 is not a number >= 0 for zones {_listed(bad, 20)}")
    table["consumption_ha_2011_2021"] = values.astype(float)
    flagged = "ILLUSTRATIVE" in path.name.upper() or "ILLUSTRATIVE" in text.upper().split("\n", 1)[0]
    table["illustrative"] = table["illustrative"].astype(bool) | flagged if "illustrative" in table else flagged
    return table[["zone_id", "consumption_ha_2011_2021", "illustrative"]]


FIGURE_PREFIXES = ("artificialised_", "renaturalised_", "net_")


def _by_zone(table: pd.DataFrame, suffix: str, years: float) -> pd.DataFrame:
    frame = table.dropna(subset=["class_value"]).pivot_table(index="zone_id", columns="class_value",
                                                              values="area_m2", aggfunc="sum", fill_value=0.0)
    out = pd.DataFrame(index=frame.index)
    out[f"artificialised_m2{suffix}"] = frame.get(ARTIFICIALISED, 0.0)
    out[f"renaturalised_m2{suffix}"] = frame.get(RENATURALISED, 0.0)
    out[f"net_m2{suffix}"] = out[f"artificialised_m2{suffix}"] - out[f"renaturalised_m2{suffix}"]
    for kind in ("artificialised", "renaturalised", "net"):
        out[f"{kind}_ha{suffix}"] = out[f"{kind}_m2{suffix}"] / 1e4
    out[f"artificialised_ha_per_year{suffix}"] = out[f"artificialised_ha{suffix}"] / years
    out[f"net_ha_per_year{suffix}"] = out[f"net_ha{suffix}"] / years
    return out.reset_index()


def zan_by_zone(zones: gpd.GeoDataFrame, change_without_mmu: str | Path, change_with_mmu: str | Path, *,
                start: date, end: date, reference: pd.DataFrame | None = None,
                mmu: Sequence[float] = (200.0, 500.0),
                min_coverage: float = DEFAULT_MIN_COVERAGE_TOTALS) -> pd.DataFrame:
    """One row per zone: artificialised, renaturalised and net land in m², ha and ha/year, without and with MMU.

    Areas are whole pixels. `status` and `covered_fraction` (observed share of the zone, nodata on either date not
    observed) come from the change map with MMU; the figures of a zone whose status is not "covered" (observed
    share below `min_coverage`, or nothing observed) are null, never 0. With a reference table
    (`read_reference_consumption`), adds the 2011–2021 annual rate, the 2021–2031 target (half of it), the
    measured annual rate (with MMU) against it, and the `illustrative` flag of the table.
    """
    years = (end - start).days / 365.25
    if years <= 0:
        raise InvalidInputError(f"the end date {end} must be after the start date {start}")
    with warnings.catch_warnings():  # the map with MMU warns once below; the one without covers the same zones
        warnings.simplefilter("ignore", DiagnosticsWarning)
        without = zonal_classes(zones, change_without_mmu, min_coverage=min_coverage)
    kept_table = zonal_classes(zones, change_with_mmu, min_coverage=min_coverage)
    raw = _by_zone(without, "_no_mmu", years)
    kept = _by_zone(kept_table, "", years)
    info = pd.DataFrame(zones.drop(columns="geometry"))[["zone_id", "zone_name"]]
    table = info.merge(kept, on="zone_id", how="left").merge(raw, on="zone_id", how="left")
    coverage = kept_table.drop_duplicates("zone_id").set_index("zone_id")
    table["status"] = table["zone_id"].map(coverage["status"])
    table["covered_fraction"] = table["zone_id"].map(coverage["covered_fraction"])
    figures = [c for c in table.columns if c.startswith(FIGURE_PREFIXES)]
    observed = table["status"] == COVERED
    table.loc[observed, figures] = table.loc[observed, figures].fillna(0.0)  # observed, no change: a real 0
    table.loc[~observed, figures] = np.nan
    table["period"] = f"{start.isoformat()}/{end.isoformat()}"
    table["mmu_building_m2"], table["mmu_other_m2"] = mmu
    if reference is not None:
        table = table.merge(reference, on="zone_id", how="left")
        table["reference_ha_per_year_2011_2021"] = table["consumption_ha_2011_2021"] / 10
        table["target_ha_per_year_2021_2031"] = table["reference_ha_per_year_2011_2021"] * (1 - ZAN_TARGET_REDUCTION)
        table["measured_vs_target"] = table["artificialised_ha_per_year"] / table["target_ha_per_year_2021_2031"]
        table["illustrative"] = table["illustrative"].fillna(False).astype(bool)
    return table
