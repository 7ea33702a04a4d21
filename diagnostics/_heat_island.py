"""Urban heat islands: rural reference, intensity (urban minus rural, °C), hot-spot classes, and a proxy.

The intensity layer follows the usual surface urban heat island definition: land surface temperature minus the
median temperature of rural, vegetated pixels in a ring around the urban zone, from the same scene. Where no
thermal image exists, `heat_proxy_layer` writes a clearly labelled, unitless proxy index instead (never °C).
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import rasterio
import rasterio.features
import rasterio.windows
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from geovigie.classes import ClassInfo, palette
from geovigie.cog import cog_writer, iter_windows
from geovigie.diagnostics._heat import LST_NODATA
from geovigie.errors import (
    DiagnosticsWarning,
    InputNotFoundError,
    InvalidInputError,
    InvalidRasterError,
    InvalidZonesError,
)
from geovigie.types import NODATA_CLASS

if TYPE_CHECKING:
    import geopandas as gpd


INTENSITY_NODATA = LST_NODATA
PROXY_NODATA = -9999.0
DEFAULT_THRESHOLDS_C: tuple[float, ...] = (2.0, 4.0, 6.0)
MAX_THRESHOLDS = 8
PROXY_TAG = "GEOVIGIE_PROXY"
# ColorBrewer YlOrRd, 9 classes: hot-spot legends sample it evenly from pale yellow to dark red
_YLORRD = ("#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#bd0026", "#800026")
_CELSIUS_UNITS = ("celsius", "°C", "degC", "degree_Celsius")


@dataclass(frozen=True)
class RuralReference:
    """The rural reference temperature of one scene and how it was obtained.

    Geometries are in `crs`, the CRS of the LST raster they were measured on.
    """

    value_c: float
    n_pixels: int
    method: str
    ring: BaseGeometry
    urban: BaseGeometry
    crs: str
    lst: Path
    land_cover: Path | None = None
    rural_classes: tuple[int, ...] | None = None


@dataclass(frozen=True)
class HeatIslandSummary:
    """Heat-island intensity over the urban zone (°C above the rural reference)."""

    path: Path
    reference: RuralReference
    thresholds_c: tuple[float, ...]
    urban_pixels: int
    urban_area_ha: float
    mean_intensity_c: float
    p90_intensity_c: float
    class_pixels: tuple[int, ...]
    """Urban-zone pixels per hot-spot class, indexed by class value."""
    method: str

    @property
    def reference_c(self) -> float:
        """The rural reference, °C."""
        return self.reference.value_c

    @property
    def class_shares(self) -> tuple[float, ...]:
        """Share (0-1) of the urban zone's valid pixels in each hot-spot class, indexed by class value."""
        total = sum(self.class_pixels)
        return tuple(n / total if total else 0.0 for n in self.class_pixels)

    def table(self) -> pd.DataFrame:
        """One row per hot-spot class: value, name, colour, pixels, share and area (m², ha) in the urban zone."""
        pixel_m2 = self.urban_area_ha * 1e4 / self.urban_pixels if self.urban_pixels else 0.0
        legend = hot_spot_legend(self.thresholds_c)
        return pd.DataFrame({
            "value": [c.value for c in legend], "name": [c.name for c in legend],
            "color": [c.color for c in legend], "pixels": list(self.class_pixels),
            "share": list(self.class_shares), "area_m2": [n * pixel_m2 for n in self.class_pixels],
            "area_ha": [n * pixel_m2 / 1e4 for n in self.class_pixels],
        })


@dataclass(frozen=True)
class HeatProxySummary:
    """A unitless heat-exposure proxy layer (0-1), for places with no thermal image."""

    path: Path
    valid_pixels: int
    mean: float
    p90: float
    method: str


# --------------------------------------------------------------------------- inputs


@contextlib.contextmanager
def _open(path: str | Path, what: str) -> Iterator[rasterio.io.DatasetReader]:
    """Open a single-band raster with a CRS, or raise the project's error naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"{path}: {what} raster not found")
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InvalidRasterError(f"{path}: unreadable {what} raster ({exc})") from exc
    with src:
        if src.crs is None:
            raise InvalidRasterError(f"{path}: {what} raster has no CRS")
        yield src


def _check_celsius(src: rasterio.io.DatasetReader) -> None:
    """Refuse rasters that are not temperatures in °C (raw ST_B10 numbers, kelvin, a proxy)."""
    tags = src.tags()
    if tags.get(PROXY_TAG):
        raise InvalidRasterError(f"{src.name}: a unitless heat proxy, not a temperature in °C")
    unit = tags.get("UNIT")
    if unit is not None and unit not in _CELSIUS_UNITS:
        raise InvalidRasterError(f"{src.name}: unit {unit!r}, expected °C (convert with temperature_layer)")
    if not np.issubdtype(np.dtype(src.dtypes[0]), np.floating):
        raise InvalidRasterError(
            f"{src.name}: {src.dtypes[0]} values look like raw ST_B10 numbers; convert to °C with temperature_layer"
        )
    if not src.crs.is_projected:
        raise InvalidRasterError(f"{src.name}: CRS {src.crs} is not projected; ring distances need metres")


def _read_masked(src: rasterio.io.DatasetReader, window: Window) -> np.ma.MaskedArray:
    """Band 1 of a window as float32, nodata and non-finite values masked."""
    return np.ma.masked_invalid(src.read(1, window=window, masked=True).astype("float32"))


def _urban_geometry(urban: gpd.GeoDataFrame | gpd.GeoSeries | BaseGeometry, crs: CRS) -> BaseGeometry:
    """The union of the urban zone's polygons in `crs` (GeoDataFrame/GeoSeries reprojected; bare geometry as is)."""
    import geopandas as gpd
    import shapely

    if isinstance(urban, gpd.GeoDataFrame | gpd.GeoSeries):
        if urban.crs is None:
            raise InvalidZonesError("urban zone has no CRS; set it (e.g. gdf.set_crs('EPSG:2154'))")
        geometry = urban.to_crs(crs).geometry.union_all() if len(urban) else shapely.Polygon()
    elif isinstance(urban, BaseGeometry):
        geometry = urban
    else:
        raise InvalidZonesError(f"urban zone must be a GeoDataFrame or a shapely geometry, not {type(urban).__name__}")
    if not geometry.is_valid:
        warnings.warn("urban zone geometry was invalid and has been repaired (shapely.make_valid)",
                      DiagnosticsWarning, stacklevel=3)
        geometry = shapely.make_valid(geometry)
    polygons = [g for g in getattr(geometry, "geoms", [geometry]) if g.geom_type in ("Polygon", "MultiPolygon")]
    geometry = shapely.union_all(polygons) if polygons else shapely.Polygon()
    if geometry.is_empty or geometry.area == 0:
        raise InvalidZonesError("urban zone holds no polygon")
    return geometry


def _window_of(src: rasterio.io.DatasetReader, geometry: BaseGeometry) -> Window | None:
    """The raster window covering `geometry`'s bounds, clipped to the raster; None when they do not overlap."""
    return _covering_window(geometry.bounds, src.transform, src.width, src.height)


def _covering_window(bounds: tuple[float, float, float, float], transform: Any, width: int,
                     height: int) -> Window | None:
    """Whole-pixel window covering `bounds`, clipped to a width × height raster; None when outside."""
    window = rasterio.windows.from_bounds(*bounds, transform=transform)
    col0, row0 = max(0, int(np.floor(window.col_off))), max(0, int(np.floor(window.row_off)))
    col1 = min(width, int(np.ceil(window.col_off + window.width)))
    row1 = min(height, int(np.ceil(window.row_off + window.height)))
    return Window(col0, row0, col1 - col0, row1 - row0) if col1 > col0 and row1 > row0 else None


def _inside(geometry: BaseGeometry, shape: tuple[int, int], transform: Any) -> np.ndarray:
    """Boolean mask of the pixels whose centre lies in `geometry`."""
    return rasterio.features.geometry_mask([geometry], out_shape=shape, transform=transform, invert=True)


def _rural_share(mask_path: Path, classes: Sequence[int], crs: CRS, transform: Any, shape: tuple[int, int],
                 bounds: tuple[float, float, float, float]) -> np.ndarray:
    """Share (0-1) of each target pixel covered by `classes` of the land-cover raster (0 where it has no data)."""
    share = np.zeros(shape, "float32")
    with _open(mask_path, "land-cover") as src:
        area = _covering_window(transform_bounds(crs, src.crs, *bounds), src.transform, src.width, src.height)
        if area is None:
            return share
        block = src.read(1, window=area, masked=True)
        rural = (np.isin(block.filled(0), list(classes)) & ~np.ma.getmaskarray(block)).astype("float32")
        reproject(rural, share, src_transform=src.window_transform(area), src_crs=src.crs, dst_transform=transform,
                  dst_crs=crs, resampling=Resampling.average)
    return share


# --------------------------------------------------------------------------- rural reference


def _check_ring_options(ring_inner_m: float, ring_outer_m: float, rural_mask: str | Path | None,
                        rural_classes: Sequence[int] | None, min_rural_share: float) -> None:
    if not 0 <= ring_inner_m < ring_outer_m:
        raise InvalidInputError(f"ring distances must satisfy 0 <= inner < outer (got {ring_inner_m}, {ring_outer_m})")
    if (rural_mask is None) != (rural_classes is None or len(rural_classes) == 0):
        raise InvalidInputError("rural_mask and rural_classes go together: give both (land-cover filter) or neither")
    if not 0 < min_rural_share <= 1:
        raise InvalidInputError(f"min_rural_share must be in (0, 1] (got {min_rural_share})")


def _method_text(value: float, n: int, src: rasterio.io.DatasetReader, inner: float, outer: float,
                 rural_mask: Path | None, rural_classes: Sequence[int] | None, min_share: float,
                 scene: str | None = None) -> str:
    scene = scene or Path(src.name).stem
    text = (f"Rural reference {value:.2f} °C: median land surface temperature of {n} pixels "
            f"({src.res[0]:g} m) of scene {scene} whose centres lie {inner:g}-{outer:g} m from the urban zone")
    if rural_mask is None:
        return text + ("; no land-cover filter: every valid ring pixel counts, built-up and water pixels "
                       "included, so the reference may be too warm.")
    return text + (f", kept only where land-cover classes {list(rural_classes or [])} of {rural_mask.name} "
                   f"(non-artificial vegetation) cover at least {min_share:.0%} of the pixel.")


def rural_reference(
    lst: str | Path,
    urban: gpd.GeoDataFrame | gpd.GeoSeries | BaseGeometry,
    *,
    ring_inner_m: float = 1000.0,
    ring_outer_m: float = 5000.0,
    rural_mask: str | Path | None = None,
    rural_classes: Sequence[int] | None = None,
    min_rural_share: float = 1.0,
    scene: str | None = None,
) -> RuralReference:
    """Median LST (°C) of rural pixels in the ring `ring_inner_m`-`ring_outer_m` around the urban zone.

    A pixel is in the ring when its centre is. With a land-cover raster (`rural_mask`, any grid and CRS) and
    the classes that are rural vegetation, a ring pixel counts only where those classes cover at least
    `min_rural_share` of it (default: all of it); without one, every valid ring pixel counts and the method says so.

    Args:
        lst: land surface temperature raster in °C (e.g. from `temperature_layer`), projected CRS in metres.
        urban: the urban zone: a GeoDataFrame/GeoSeries with a CRS (reprojected), or a shapely geometry in the
            raster's CRS. Several polygons are merged.
        ring_inner_m: inner ring distance from the urban zone, metres.
        ring_outer_m: outer ring distance, metres.
        rural_mask: optional land-cover class raster.
        rural_classes: class values of `rural_mask` that are non-artificial vegetation.
        min_rural_share: share of a pixel the rural classes must cover.
        scene: how the method text names the imagery (e.g. its item id and date); the file name by default.

    Raises:
        InputNotFoundError: a raster is missing.
        InvalidRasterError: the LST has no CRS, is not °C or not in metres.
        InvalidZonesError: the urban zone is unusable, off the raster, or its ring holds no valid (rural) pixel.
        InvalidInputError: inconsistent options.
    """
    _check_ring_options(ring_inner_m, ring_outer_m, rural_mask, rural_classes, min_rural_share)
    with _open(lst, "LST") as src:
        _check_celsius(src)
        zone = _urban_geometry(urban, src.crs)
        if not zone.intersects(box(*src.bounds)):
            raise InvalidZonesError(f"urban zone does not overlap {src.name} (a bare geometry must be in {src.crs})")
        ring = zone.buffer(ring_outer_m).difference(zone.buffer(ring_inner_m))
        window = _window_of(src, ring)
        values = np.array([], "float32")
        if window is not None:
            block = _read_masked(src, window)
            transform = src.window_transform(window)
            keep = _inside(ring, block.shape, transform) & ~np.ma.getmaskarray(block)
            _warn_partial_ring(src, ring, int(keep.sum()))
            if rural_mask is not None and rural_classes is not None:
                share = _rural_share(Path(rural_mask), rural_classes, src.crs, transform, block.shape,
                                     rasterio.windows.bounds(window, src.transform))
                keep &= share >= min_rural_share - 1e-6
            values = block.data[keep]
        if values.size == 0:
            filtered = f" and land-cover classes {list(rural_classes or [])}" if rural_mask is not None else ""
            raise InvalidZonesError(f"{src.name}: no valid pixel in the {ring_inner_m:g}-{ring_outer_m:g} m ring "
                                    f"around the urban zone{filtered}")
        value = float(np.median(values))
        method = _method_text(value, int(values.size), src, ring_inner_m, ring_outer_m,
                              Path(rural_mask) if rural_mask is not None else None, rural_classes, min_rural_share,
                              scene)
        return RuralReference(value, int(values.size), method, ring, zone, src.crs.to_string(), Path(lst),
                              Path(rural_mask) if rural_mask is not None else None,
                              tuple(int(c) for c in rural_classes) if rural_classes is not None else None)


def _warn_partial_ring(src: rasterio.io.DatasetReader, ring: BaseGeometry, valid: int) -> None:
    expected = ring.area / abs(src.transform.a * src.transform.e)
    if valid and valid < 0.5 * expected:
        warnings.warn(f"{src.name}: only {valid / expected:.0%} of the rural ring lies on valid pixels",
                      DiagnosticsWarning, stacklevel=3)


# --------------------------------------------------------------------------- intensity and hot spots


def _check_thresholds(thresholds: Sequence[float]) -> tuple[float, ...]:
    values = tuple(float(t) for t in thresholds)
    if not 1 <= len(values) <= MAX_THRESHOLDS or not all(np.isfinite(values)):
        raise InvalidInputError(f"hot-spot thresholds: 1 to {MAX_THRESHOLDS} finite values needed (got {values})")
    if any(b <= a for a, b in zip(values, values[1:], strict=False)):
        raise InvalidInputError(f"hot-spot thresholds must increase strictly (got {values})")
    return values


def hot_spot_legend(thresholds: Sequence[float] = DEFAULT_THRESHOLDS_C) -> tuple[ClassInfo, ...]:
    """The hot-spot classes for `thresholds` (°C above the rural reference): value, name, colour.

    Class 0 is below the first threshold; class k holds thresholds[k-1] <= intensity < thresholds[k].
    """
    values = _check_thresholds(thresholds)
    colours = [_YLORRD[round(i)] for i in np.linspace(0, len(_YLORRD) - 1, len(values) + 1)]
    names = [f"below {values[0]:+g} °C"]
    names += [f"{a:+g} to {b:+g} °C" for a, b in zip(values, values[1:], strict=False)]
    names.append(f"{values[-1]:+g} °C and above")
    return tuple(ClassInfo(value=i, name=name, color=colour,
                           description=f"surface heat-island intensity {name} (LST minus rural reference)")
                 for i, (name, colour) in enumerate(zip(names, colours, strict=True)))


HOT_SPOT_CLASSES: tuple[ClassInfo, ...] = hot_spot_legend(DEFAULT_THRESHOLDS_C)


def _classify(values: np.ndarray, thresholds: tuple[float, ...]) -> np.ndarray:
    return np.searchsorted(np.asarray(thresholds), values, side="right").astype("uint8")


def _urban_in_crs(reference: RuralReference, crs: CRS) -> BaseGeometry:
    import geopandas as gpd

    if CRS.from_user_input(reference.crs) == crs:
        return reference.urban
    return gpd.GeoSeries([reference.urban], crs=reference.crs).to_crs(crs).iloc[0]


def _require_urban_pixels(src: rasterio.io.DatasetReader, zone: BaseGeometry) -> None:
    """Raise before writing anything when no valid pixel centre lies in the urban zone."""
    window = _window_of(src, zone)
    if window is not None:
        block = _read_masked(src, window)
        if (_inside(zone, block.shape, src.window_transform(window)) & ~np.ma.getmaskarray(block)).any():
            return
    raise InvalidZonesError(f"{src.name}: no valid pixel in the urban zone")


def heat_island_layer(
    lst: str | Path,
    reference: RuralReference,
    out_path: str | Path,
    *,
    hot_spot_thresholds_c: Sequence[float] = DEFAULT_THRESHOLDS_C,
) -> HeatIslandSummary:
    """Write intensity = LST − reference (°C, float32 COG, nodata −9999) window by window; summarise the urban zone.

    Raises:
        InputNotFoundError / InvalidRasterError: the LST is missing, has no CRS or is not °C.
        InvalidZonesError: no valid pixel of the LST lies in the reference's urban zone.
        InvalidInputError: bad thresholds.
    """
    thresholds = _check_thresholds(hot_spot_thresholds_c)
    if Path(lst).resolve() != reference.lst.resolve():
        warnings.warn(f"{lst}: intensity measured against the rural reference of another raster "
                      f"({reference.lst.name})", DiagnosticsWarning, stacklevel=2)
    urban_values: list[np.ndarray] = []
    with _open(lst, "LST") as src:
        _check_celsius(src)
        zone = _urban_in_crs(reference, src.crs)
        _require_urban_pixels(src, zone)
        method = (f"{reference.method} Heat-island intensity = LST − {reference.value_c:.2f} °C; urban-zone figures "
                  f"over pixels whose centres lie in the urban zone; hot-spot thresholds {list(thresholds)} °C.")
        profile = {"driver": "GTiff", "width": src.width, "height": src.height, "count": 1, "dtype": "float32",
                   "crs": src.crs, "transform": src.transform, "nodata": INTENSITY_NODATA}
        tags = {"GEOVIGIE_INPUTS": Path(src.name).name, "UNIT": "celsius",
                "RURAL_REFERENCE_C": f"{reference.value_c:.4f}", "METHOD": method}
        with cog_writer(out_path, profile=profile, band_descriptions=["heat_island_intensity_celsius"],
                        overview_resampling="average", tags=tags) as dst:
            for window in iter_windows(src.width, src.height):
                block = _read_masked(src, window)
                intensity = block - np.float32(reference.value_c)
                inside = _inside(zone, block.shape, src.window_transform(window)) & ~np.ma.getmaskarray(intensity)
                urban_values.append(intensity.data[inside])
                dst.write(intensity.filled(INTENSITY_NODATA).astype("float32")[None], window=window)
        pixel_m2 = abs(src.transform.a * src.transform.e)
    values = np.concatenate(urban_values)
    counts = np.bincount(_classify(values, thresholds), minlength=len(thresholds) + 1)
    return HeatIslandSummary(Path(out_path), reference, thresholds, int(values.size), values.size * pixel_m2 / 1e4,
                             float(values.mean()), float(np.percentile(values, 90)),
                             tuple(int(n) for n in counts), method)


def hot_spot_classes(
    intensity_path: str | Path, out_path: str | Path, thresholds: Sequence[float] = DEFAULT_THRESHOLDS_C
) -> Path:
    """Write the uint8 hot-spot class COG of an intensity layer (0 below the first threshold, k above the k-th).

    The file embeds a palette and the legend (tag GEOVIGIE_CLASSES, JSON value/name/color); 255 is nodata.

    Raises:
        InputNotFoundError / InvalidRasterError: the intensity raster is missing, unreadable, not °C or a proxy.
        InvalidInputError: bad thresholds.
    """
    values = _check_thresholds(thresholds)
    legend = hot_spot_legend(values)
    with _open(intensity_path, "heat-island intensity") as src:
        _check_celsius(src)
        profile = {"driver": "GTiff", "width": src.width, "height": src.height, "count": 1, "dtype": "uint8",
                   "crs": src.crs, "transform": src.transform, "nodata": NODATA_CLASS}
        tags = {"GEOVIGIE_INPUTS": Path(src.name).name, "THRESHOLDS_C": json.dumps(list(values)),
                "GEOVIGIE_CLASSES": json.dumps([{"value": c.value, "name": c.name, "color": c.color}
                                                for c in legend], ensure_ascii=False)}
        with cog_writer(out_path, profile=profile, band_descriptions=["hot_spot_class"],
                        colormap=palette(legend), tags=tags) as dst:
            for window in iter_windows(src.width, src.height):
                block = _read_masked(src, window)
                classes = np.where(np.ma.getmaskarray(block), NODATA_CLASS, _classify(block.data, values))
                dst.write(classes.astype("uint8")[None], window=window)
    return Path(out_path)


# --------------------------------------------------------------------------- proxy


def _proxy_method(impervious: Path | None, weight: float) -> str:
    vegetation = "(1 − clip(NDVI, 0, 1))"
    formula = (f"proxy = {weight:g} × impervious fraction + {1 - weight:g} × {vegetation}" if impervious is not None
               else f"proxy = {vegetation}")
    return (f"Heat exposure PROXY, unitless 0-1, not a temperature (no thermal image used): {formula}. "
            "Higher means more sealed and less vegetated; open water (NDVI < 0) scores like bare ground and should "
            "be masked before reading it.")


def _impervious_reader(path: Path | None, grid: rasterio.io.DatasetReader,
                       stack: contextlib.ExitStack) -> Any:
    """The impervious-fraction raster, warped onto the NDVI grid (area average) when its grid differs."""
    if path is None:
        return None
    src = stack.enter_context(_open(path, "impervious-fraction"))
    if src.crs == grid.crs and src.transform == grid.transform and src.shape == grid.shape:
        return src
    return stack.enter_context(WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width,
                                         height=grid.height, resampling=Resampling.average))


def _proxy_block(ndvi: np.ma.MaskedArray, impervious: np.ma.MaskedArray | None, weight: float,
                 names: tuple[str, str]) -> np.ma.MaskedArray:
    if ndvi.count() and (ndvi.min() < -1.0001 or ndvi.max() > 1.0001):
        raise InvalidRasterError(f"{names[0]}: values outside [-1, 1]; not an NDVI")
    proxy = 1.0 - np.ma.clip(ndvi, 0.0, 1.0)
    if impervious is None:
        return proxy
    if impervious.count() and (impervious.min() < -1e-4 or impervious.max() > 1.0001):
        raise InvalidRasterError(f"{names[1]}: values outside 0-1 (max {float(impervious.max()):g}); "
                                 "expected a fraction (percent? divide by 100)")
    return weight * impervious + (1.0 - weight) * proxy


def heat_proxy_layer(
    ndvi: str | Path,
    impervious_fraction: str | Path | None,
    out_path: str | Path,
    *,
    impervious_weight: float = 0.5,
) -> HeatProxySummary:
    """Write a unitless heat-exposure proxy (0-1, float32 COG, nodata −9999) where no thermal image exists.

    proxy = w × impervious + (1 − w) × (1 − clip(NDVI, 0, 1)), or 1 − clip(NDVI, 0, 1) without an impervious
    fraction. The band description, tags (GEOVIGIE_PROXY, UNIT=unitless) and `method` say it is a proxy.

    Args:
        ndvi: NDVI raster (−1 to 1); its grid is the output grid.
        impervious_fraction: optional sealed-surface fraction 0-1, any grid (area-averaged onto the NDVI grid).
        out_path: target COG.
        impervious_weight: w, in [0, 1].

    Raises:
        InputNotFoundError / InvalidRasterError: a raster is missing, has no CRS, or holds values out of range.
        InvalidInputError: the weight is outside [0, 1].
    """
    if not 0 <= impervious_weight <= 1:
        raise InvalidInputError(f"impervious_weight must be in [0, 1] (got {impervious_weight})")
    impervious_path = Path(impervious_fraction) if impervious_fraction is not None else None
    method = _proxy_method(impervious_path, impervious_weight)
    count, total, samples = 0, 0.0, []
    with contextlib.ExitStack() as stack:
        src = stack.enter_context(_open(ndvi, "NDVI"))
        imp = _impervious_reader(impervious_path, src, stack)
        names = (Path(src.name).name, impervious_path.name if impervious_path else "")
        profile = {"driver": "GTiff", "width": src.width, "height": src.height, "count": 1, "dtype": "float32",
                   "crs": src.crs, "transform": src.transform, "nodata": PROXY_NODATA}
        tags = {PROXY_TAG: "true", "UNIT": "unitless", "METHOD": method,
                "GEOVIGIE_INPUTS": ",".join(n for n in names if n)}
        with cog_writer(out_path, profile=profile, band_descriptions=["heat_proxy_index (unitless proxy, 0-1)"],
                        overview_resampling="average", tags=tags) as dst:
            for window in iter_windows(src.width, src.height):
                fraction = _read_masked(imp, window) if imp is not None else None
                proxy = _proxy_block(_read_masked(src, window), fraction, impervious_weight, names)
                good = proxy.compressed()
                count, total = count + good.size, total + float(good.sum(dtype="float64"))
                samples.append(good[:: max(1, good.size // 20000)])
                dst.write(proxy.filled(PROXY_NODATA).astype("float32")[None], window=window)
    sample = np.concatenate(samples) if samples else np.array([], "float32")
    p90 = float(np.percentile(sample, 90)) if sample.size else float("nan")
    return HeatProxySummary(Path(out_path), count, total / count if count else float("nan"), p90, method)
