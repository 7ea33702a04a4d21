"""Inputs of the area diagnostics named the way a service user gives them: a shipped ZAN mapping by name; zones as
INSEE commune / département codes of the shipped IGN Admin Express boundaries, as GeoJSON features, or the
territory itself."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import geopandas as gpd
from shapely.geometry.base import BaseGeometry

from geovigie.diagnostics._zan_account import MAPPINGS_DIR
from geovigie.diagnostics._zonal_stats import read_zones
from geovigie.errors import InputNotFoundError, InvalidInputError

MAPPING_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
CODE = re.compile(r"^(insee|dep):[0-9AB]{2,5}$", re.IGNORECASE)
TERRITORY_ZONE = "territory"
MAX_ZONES = 2000


def shipped_mappings() -> list[str]:
    """Names of the ZAN mappings shipped with geovigie."""
    return sorted(p.stem for p in MAPPINGS_DIR.glob("*.toml"))


def shipped_mapping(name: str) -> Path:
    """The file of a shipped ZAN mapping (a name only: never a path a request could give).

    Raises:
        InputNotFoundError: no shipped mapping of that name.
    """
    path = MAPPINGS_DIR / f"{name}.toml"
    if not MAPPING_NAME.match(name) or not path.is_file():
        raise InputNotFoundError(f"no shipped ZAN mapping {name[:64]!r}: use one of {', '.join(shipped_mappings())}")
    return path


def _from_codes(codes: list[str], sample_dir: Path) -> gpd.GeoDataFrame:
    from geovigie.catalog.imagery import parse_aoi

    rows = []
    for text in codes:
        text = text.strip()
        if not CODE.match(text):
            raise InvalidInputError(f"zone {text[:40]!r}: use insee:CODE (a commune) or dep:CODE (a département)")
        aoi = parse_aoi(text, sample_dir=sample_dir)
        code = text.partition(":")[2].upper()
        rows.append({"zone_id": code, "zone_name": aoi.label.split(f"{code} ", 1)[-1], "geometry": aoi.geometry})
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")
    duplicated = sorted(set(frame.loc[frame["zone_id"].duplicated(), "zone_id"]))
    if duplicated:
        raise InvalidInputError(f"zones: {', '.join(duplicated)} given twice")
    return frame


def _from_geojson(value: dict[str, Any]) -> gpd.GeoDataFrame:
    features = value.get("features") if value.get("type") == "FeatureCollection" else (
        [value] if value.get("type") == "Feature" else None)
    if not isinstance(features, list) or not features:
        raise InvalidInputError("zones: give a GeoJSON Feature or FeatureCollection of polygons (WGS84), with an "
                                "id property (zone_id, code, INSEE_COM, id) and a name")
    if len(features) > MAX_ZONES:
        raise InvalidInputError(f"zones: {len(features)} features, at most {MAX_ZONES}")
    with tempfile.TemporaryDirectory(prefix="geovigie-zones-") as folder:  # read as the CLI reads a zones file
        path = Path(folder) / "zones.geojson"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
        zones = read_zones(path, crs="EPSG:4326")
    return zones.to_crs("EPSG:4326")


def request_zones(spec: str | list[str] | dict[str, Any] | None, *, territory: BaseGeometry, label: str,
                  sample_dir: Path) -> gpd.GeoDataFrame:
    """Zones (`zone_id`, `zone_name`, geometry in EPSG:4326) from a request's `zones`.

    Args:
        spec: None (the territory as one zone), `insee:CODE` / `dep:CODE` codes (a list, or one string with
            commas) looked up in the shipped boundaries, or a GeoJSON Feature / FeatureCollection.
        territory: the job's territory (WGS84).
        label: the territory's name.
        sample_dir: the shipped `data/` folder.

    Raises:
        InvalidInputError: malformed codes or features, codes not shipped, duplicate ids, zones outside the territory.
    """
    if spec is None:
        return gpd.GeoDataFrame({"zone_id": [TERRITORY_ZONE], "zone_name": [label]}, geometry=[territory],
                                crs="EPSG:4326")
    if isinstance(spec, dict):
        zones = _from_geojson(spec)
    else:
        codes = spec.split(",") if isinstance(spec, str) else list(spec)
        if not codes or len(codes) > MAX_ZONES:
            raise InvalidInputError(f"zones: give 1 to {MAX_ZONES} codes")
        zones = _from_codes(codes, sample_dir)
    outside = zones.loc[~zones.geometry.intersects(territory), "zone_id"].tolist()
    if outside:
        raise InvalidInputError(f"zones {', '.join(map(str, outside[:10]))} lie outside the territory {label}")
    return zones
