"""Areas of interest: a GeoJSON (or any vector) file, a bbox, or an INSEE code from the shipped IGN boundaries.

`insee:32001` is a commune, `dep:32` a département. Codes are looked up in the IGN Admin Express files shipped in
`data/` (the Val-d'Oise communes, the Gers sample communes, every département of metropolitan France); any other
commune needs a boundary file (`--aoi commune.geojson`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shapely.geometry import box, mapping
from shapely.geometry.base import BaseGeometry

from geovigie.errors import InputNotFoundError, InvalidInputError
from geovigie.types import BBox, normalize_bbox

COMMUNE_FILES = (("admin-express/communes-95-val-d-oise.geojson", "code", "nom"),
                 ("s2-l2a-theia-gers/COMMUNE_32xxx.geojson", "INSEE_COM", "NOM_COM"))
DEPARTEMENT_FILE = ("admin-express/departements_simplified_1km.geojson", "code", "nom")


class UnknownAreaError(InvalidInputError):
    """An AOI (INSEE code, file, bbox) cannot be resolved."""


@dataclass(frozen=True)
class Aoi:
    """An area of interest in EPSG:4326 and a label naming it in messages."""

    geometry: BaseGeometry
    label: str

    @property
    def bbox(self) -> BBox:
        """(west, south, east, north) in degrees."""
        west, south, east, north = self.geometry.bounds
        return float(west), float(south), float(east), float(north)

    def geojson(self) -> dict[str, Any]:
        """The geometry as a GeoJSON mapping (for STAC `intersects`)."""
        return dict(mapping(self.geometry))


def _crs(frame: Any, path: Path, crs: str | None) -> Any:
    """The file's CRS, or `crs` (the --zones-crs option) when it has none; no CRS is ever guessed."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        given = CRS.from_user_input(crs) if crs is not None else None
    except CRSError as err:
        raise UnknownAreaError(f"--zones-crs {crs!r}: not a CRS (use e.g. EPSG:2154)") from err
    if frame.crs is None:
        if given is None:
            raise UnknownAreaError(f"AOI file {path} has no CRS (a shapefile without its .prj?); give it with "
                                   "--zones-crs (EPSG:2154 for Lambert-93, EPSG:4326 for longitude/latitude)")
        return given
    if given is not None and CRS.from_user_input(frame.crs) != given:
        raise UnknownAreaError(f"AOI file {path} says its CRS is {frame.crs.to_string()}, --zones-crs says {crs}")
    return frame.crs


def _read(path: Path, crs: str | None = None) -> Any:
    import geopandas as gpd
    import numpy as np

    try:
        frame = gpd.read_file(path, engine="pyogrio")
    except Exception as err:  # pyogrio raises its own DataSourceError family
        raise UnknownAreaError(f"AOI file {path}: not a readable vector file ({err})") from err
    if frame.empty or "geometry" not in frame:
        raise UnknownAreaError(f"AOI file {path} holds no feature")
    frame = frame.set_crs(_crs(frame, path, crs), allow_override=True).to_crs("EPSG:4326")
    bounds = np.asarray(frame.geometry.dropna().bounds, dtype=float)
    if not np.isfinite(bounds).all() or (np.abs(bounds[:, [0, 2]]) > 180).any() or (
            np.abs(bounds[:, [1, 3]]) > 90).any():
        raise UnknownAreaError(f"AOI file {path}: coordinates out of range in its CRS {frame.crs} (wrong "
                               "--zones-crs?)")
    return frame


def aoi_from_file(path: str | Path, *, crs: str | None = None) -> Aoi:
    """The union of a vector file's geometries (GeoJSON, GeoPackage, shapefile), in EPSG:4326.

    A file without a CRS needs `crs` (the `--zones-crs` option): no CRS is guessed.

    Raises:
        InputNotFoundError: no such file.
        UnknownAreaError: unreadable, empty, no CRS, or no polygon.
    """
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"AOI file not found: {path}")
    frame = _read(path, crs)
    shape = frame.geometry.make_valid().union_all()
    if shape.is_empty or shape.area == 0:
        raise UnknownAreaError(f"AOI file {path} has no polygon (points or lines only?)")
    return Aoi(shape, path.name)


def _lookup(sample_dir: Path, files: Sequence[tuple[str, str, str]], code: str, what: str) -> Aoi:
    searched = []
    for relative, code_field, name_field in files:
        path = sample_dir / relative
        if not path.is_file():
            continue
        frame = _read(path)
        searched.append(f"{path.name} ({len(frame)} {what}s)")
        match = frame[frame[code_field].astype(str) == code]
        if not match.empty:
            return Aoi(match.geometry.make_valid().union_all(), f"{what} {code} {match.iloc[0][name_field]}")
    where = ", ".join(searched) or f"no boundary file found in {sample_dir}"
    raise UnknownAreaError(f"INSEE {what} code {code} is not in the shipped boundaries ({where}); give a boundary "
                           "file (--aoi commune.geojson) or a bbox (--aoi west,south,east,north)")


def parse_aoi(text: str, *, sample_dir: str | Path | None = None, crs: str | None = None) -> Aoi:
    """An AOI from `insee:CODE` (commune), `dep:CODE` (département), `west,south,east,north` or a file path.

    Args:
        text: what the user typed.
        sample_dir: the shipped `data/` folder (INSEE codes only); the settings' sample data when None.
        crs: CRS of a file that has none (the `--zones-crs` option).

    Raises:
        UnknownAreaError: code not in the shipped boundaries, malformed code or bbox, unreadable file.
        InputNotFoundError: a file path that does not exist.
    """
    text = text.strip()
    kind, _, code = text.partition(":")
    if kind.lower() in ("insee", "commune", "dep", "departement") and code:
        code = code.strip().upper()
        if sample_dir is None:
            from geovigie.settings import get_settings

            sample_dir = get_settings().sample_data_path()
        if kind.lower() in ("dep", "departement"):
            if not (len(code) in (2, 3) and (code.isdigit() or code in ("2A", "2B"))):
                raise UnknownAreaError(f"département code {code!r}: use 2 digits (32), 2A/2B or 3 digits (971)")
            return _lookup(Path(sample_dir), [DEPARTEMENT_FILE], code, "département")
        if not (len(code) == 5 and (code.isdigit() or code[:2] in ("2A", "2B"))):
            raise UnknownAreaError(f"INSEE commune code {code!r}: use 5 characters (32001, 2A004)")
        return _lookup(Path(sample_dir), COMMUNE_FILES, code, "commune")
    if "," in text and set(text) <= set("0123456789.,-+ eE") and not Path(text).exists():
        try:
            bbox = normalize_bbox(text)
        except InvalidInputError as err:
            raise UnknownAreaError(str(err)) from err
        return Aoi(box(*bbox), f"bbox {text}")
    return aoi_from_file(text, crs=crs)
