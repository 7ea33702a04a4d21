"""Labels on an image grid: rasters reprojected, vectors (polygons, points as disks) and field records rasterised.

Every source value goes through the config's explicit mapping (source value or name -> class); a value the
mapping does not know is an error listing it. Field-validation records (`FIELD_STATUSES`) are vectors whose
class attribute is `status`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import rasterio
import rasterio.features
import rasterio.warp
from affine import Affine
from rasterio.crs import CRS

from geovigie.errors import InputNotFoundError, InvalidInputError
from geovigie.training._targets import IGNORE

FIELD_STATUSES = ("confirmed", "false_alarm", "cleaned")
"""Field-validation statuses: a detection confirmed on site, a false alarm, a site since cleaned."""


class LabelError(InvalidInputError):
    """Labels cannot be used: outside the imagery, a class missing from the mapping, no class attribute..."""


@dataclass(frozen=True)
class Grid:
    """An image grid: CRS, transform and shape (rows, cols)."""

    crs: CRS
    transform: Affine
    height: int
    width: int

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in the grid's CRS."""
        return _bounds(self)


def _bounds(grid: Grid) -> tuple[float, float, float, float]:
    west, south, east, north = rasterio.transform.array_bounds(grid.height, grid.width, grid.transform)
    return float(west), float(south), float(east), float(north)


def source_key(value: object) -> str:
    """Source values compared as text, integral floats as integers (8.0 and '8' are the same class)."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value).strip()


@dataclass(frozen=True)
class Mapping:
    """Source value -> class value, source values read as no label, and what unlabelled pixels become."""

    to_class: dict[str, int]
    ignored: frozenset[str]
    unlabelled: int
    class_names: list[str]

    def check(self, values: set[str], where: str) -> None:
        """Refuse source values that are neither mapped nor ignored, listing them."""
        unknown = sorted(v for v in values if v not in self.to_class and v not in self.ignored)
        if unknown:
            raise LabelError(f"{where}: source classes {unknown} are not in the class mapping "
                             f"(mapped: {sorted(self.to_class)}; ignored: {sorted(self.ignored)}); add them to a "
                             "class's sources or to labels.ignore_values")


def _outside(where: str, label_bounds: tuple[float, ...], grid: Grid) -> LabelError:
    return LabelError(f"{where}: the labels (bounds {tuple(round(b, 1) for b in label_bounds)} in {grid.crs}) do not "
                      f"overlap the image (bounds {tuple(round(b, 1) for b in _bounds(grid))}); check the files and "
                      "their CRS")


def raster_labels(path: Path, band: int, grid: Grid, mapping: Mapping) -> np.ndarray:
    """Class values (uint8, IGNORE = no label) of a label raster on `grid`, reprojected (nearest) when needed."""
    if not path.is_file():
        raise InputNotFoundError(f"no label raster at {path}")
    with rasterio.open(path) as src:
        if src.crs is None:
            raise LabelError(f"{path}: label raster has no CRS; write one (e.g. gdal_edit.py -a_srs EPSG:xxxx)")
        if not 1 <= band <= src.count:
            raise LabelError(f"{path}: no band {band} (the raster has {src.count})")
        label_bounds = rasterio.warp.transform_bounds(src.crs, grid.crs, *src.bounds)
        west, south, east, north = _bounds(grid)
        if label_bounds[0] >= east or label_bounds[2] <= west or label_bounds[1] >= north or label_bounds[3] <= south:
            raise _outside(str(path), label_bounds, grid)
        nodata = src.nodata
        if src.crs == grid.crs and src.transform == grid.transform and src.shape == (grid.height, grid.width):
            raw = src.read(band).astype(np.float64)
            inside = np.ones(raw.shape, dtype=bool)
        else:
            raw = np.full((grid.height, grid.width), np.nan, dtype=np.float64)
            rasterio.warp.reproject(rasterio.band(src, band), raw, dst_transform=grid.transform, dst_crs=grid.crs,
                                    resampling=rasterio.warp.Resampling.nearest, dst_nodata=np.nan)
            inside = np.isfinite(raw)
    if nodata is not None:
        inside &= raw != nodata
    inside &= np.isfinite(raw)
    values = np.unique(raw[inside])
    mapping.check({source_key(v) for v in values}, str(path))
    labels = np.full(raw.shape, mapping.unlabelled, dtype=np.uint8)
    labels[~inside] = mapping.unlabelled
    for value in values:
        key = source_key(value)
        labels[inside & (raw == value)] = mapping.to_class.get(key, IGNORE)
    return labels


def read_vectors(path: Path, layer: str | None, attribute: str, *, field_validation: bool = False):  # noqa: ANN201
    """A GeoDataFrame of label features with `attribute`; field records are checked (status, date, author)."""
    import geopandas as gpd

    if not path.is_file():
        raise InputNotFoundError(f"no label file at {path}")
    try:
        frame = gpd.read_file(path, layer=layer) if layer else gpd.read_file(path)
    except Exception as error:  # pyogrio raises DataSourceError and friends
        raise LabelError(f"{path}: cannot read the labels as vectors ({error})") from None
    if frame.crs is None:
        raise LabelError(f"{path}: the label layer has no CRS; save it with one (GeoJSON is EPSG:4326 by default)")
    if attribute not in frame.columns:
        columns = [c for c in frame.columns if c != "geometry"]
        raise LabelError(f"{path}: no class attribute {attribute!r}; the features have {columns} "
                         "(set labels.attribute)")
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    if field_validation:
        _check_field_records(frame, path)
    return frame


def _check_field_records(frame, path: Path) -> None:  # noqa: ANN001
    for column in ("status", "date", "author"):
        if column not in frame.columns:
            raise LabelError(f"{path}: field-validation records need a {column!r} property on every feature")
    for index, row in frame.iterrows():
        if row["status"] not in FIELD_STATUSES:
            raise LabelError(f"{path}: feature {index} has status {row['status']!r}; expected one of {FIELD_STATUSES}")
        try:
            date.fromisoformat(str(row["date"])[:10])
        except ValueError:
            raise LabelError(f"{path}: feature {index} has date {row['date']!r}, not YYYY-MM-DD") from None
        if not str(row["author"] or "").strip():
            raise LabelError(f"{path}: feature {index} has no author")


def vector_labels(frame, attribute: str, grid: Grid, mapping: Mapping, radius_m: float, where: str) -> np.ndarray:  # noqa: ANN001
    """Class values (uint8) of polygons, and of points as disks of `radius_m`, rasterised on `grid`."""
    frame = frame.to_crs(grid.crs)
    if frame.crs.is_geographic:
        raise LabelError(f"{where}: the image CRS {grid.crs} is geographic; point radii need a projected CRS")
    west, south, east, north = _bounds(grid)
    frame = frame.copy()
    points = frame.geom_type.isin(["Point", "MultiPoint"])
    frame.loc[points, "geometry"] = frame.loc[points, "geometry"].buffer(radius_m)
    inside = frame[frame.intersects(_box(west, south, east, north))]
    if inside.empty:
        total = frame.total_bounds if len(frame) else (0.0, 0.0, 0.0, 0.0)
        raise _outside(where, tuple(float(b) for b in total), grid)
    keys = [source_key(v) for v in inside[attribute]]
    mapping.check(set(keys), where)
    shapes = [(geom, mapping.to_class.get(k, IGNORE))
              for geom, k in zip(inside.geometry, keys, strict=True)]
    return rasterio.features.rasterize(shapes, out_shape=(grid.height, grid.width), transform=grid.transform,
                                       fill=mapping.unlabelled, dtype="uint8")


def _box(west: float, south: float, east: float, north: float):  # noqa: ANN202
    from shapely.geometry import box

    return box(west, south, east, north)


def field_record(geometry: dict[str, object], status: str, day: str, author: str, **extra: object) -> dict[str, object]:
    """One field-validation feature (GeoJSON dict): a checked status, an ISO date, an author."""
    if status not in FIELD_STATUSES:
        raise InvalidInputError(f"status {status!r}: expected one of {FIELD_STATUSES}")
    date.fromisoformat(day)
    return {"type": "Feature", "geometry": geometry, "properties": {"status": status, "date": day, "author": author,
                                                                    **extra}}


def write_field_records(path: Path, features: list[dict[str, object]], crs: str = "EPSG:4326") -> Path:
    """Write field-validation features as a GeoJSON FeatureCollection (named CRS when not EPSG:4326)."""
    from geovigie.atomic import write_json_atomic

    payload: dict[str, object] = {"type": "FeatureCollection", "features": features}
    if crs != "EPSG:4326":
        payload["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:{crs.replace(':', '::')}"}}
    write_json_atomic(path, payload)
    return path
