"""Raster inputs for inference: a GeoTIFF or a STAC item, read one window at a time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from geovigie.catalog._bands import canonical_s2_name
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from geovigie.errors import BandMismatchError, InputNotFoundError, InvalidRasterError


@dataclass(frozen=True)
class BandRef:
    """Where one band lives: a file and its 1-based band index."""

    name: str
    href: str
    index: int


@dataclass(frozen=True)
class RasterSource:
    """A description of an input raster, cheap to pickle: files are opened only inside `read`.

    All bands are read onto one grid (the grid of the first band's file); bands stored at
    another resolution are resampled on the fly (bilinear).
    """

    id: str
    location: str
    bands: tuple[BandRef, ...]
    product_level: str | None
    width: int
    height: int
    crs_wkt: str
    transform: tuple[float, ...]
    nodata: float | None
    scale: float = 1.0

    @property
    def band_names(self) -> list[str]:
        """Band names in reading order."""
        return [b.name for b in self.bands]

    @property
    def crs(self) -> CRS:
        """The CRS of the reading grid."""
        return CRS.from_wkt(self.crs_wkt)

    @property
    def affine(self) -> Affine:
        """The transform of the reading grid."""
        return Affine(*self.transform[:6])

    def select(self, names: list[str]) -> RasterSource:
        """The same source restricted to `names`, in that order (names must exist)."""
        by_name = {b.name: b for b in self.bands}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise BandMismatchError(f"{self.location}: bands {missing} not found among {self.band_names}")
        return RasterSource(
            self.id, self.location, tuple(by_name[n] for n in names), self.product_level,
            self.width, self.height, self.crs_wkt, self.transform, self.nodata, self.scale,
        )

    def read(self, window: Window, fill: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Read `window` (may extend past the edges) as float32 (bands, rows, cols) and a validity mask.

        Pixels outside the raster, equal to nodata or not finite are invalid; invalid pixels are
        set to `fill` (one value per band, default 0).
        """
        rows, cols = int(window.height), int(window.width)
        out = np.empty((len(self.bands), rows, cols), dtype=np.float32)
        valid = np.ones((rows, cols), dtype=bool)
        by_file: dict[str, list[tuple[int, BandRef]]] = {}
        for position, band in enumerate(self.bands):
            by_file.setdefault(band.href, []).append((position, band))
        for href, refs in by_file.items():
            indexes = [b.index for _, b in refs]
            with rasterio.open(href) as src:
                same_grid = src.width == self.width and src.height == self.height and src.crs == self.crs
                if same_grid and tuple(src.transform)[:6] == tuple(self.transform[:6]):
                    data = src.read(indexes, window=window, boundless=True, fill_value=src.nodata or 0, masked=True)
                else:
                    with WarpedVRT(
                        src, crs=self.crs, transform=self.affine, width=self.width, height=self.height,
                        resampling=Resampling.bilinear,
                    ) as vrt:
                        data = vrt.read(indexes, window=window, boundless=True, fill_value=src.nodata or 0, masked=True)
            inside = _inside_mask(window, self.width, self.height)
            for (position, _), plane in zip(refs, data, strict=True):
                values = plane.filled(np.nan).astype(np.float32) * self.scale
                good = inside & np.isfinite(values) & ~np.ma.getmaskarray(plane)
                valid &= good
                out[position] = values
        if fill is None:
            fill = np.zeros(len(self.bands), dtype=np.float32)
        for position in range(len(self.bands)):
            np.copyto(out[position], fill[position], where=~valid)
        return out, valid


def _inside_mask(window: Window, width: int, height: int) -> np.ndarray:
    rows = np.arange(int(window.row_off), int(window.row_off) + int(window.height))
    cols = np.arange(int(window.col_off), int(window.col_off) + int(window.width))
    return ((rows >= 0) & (rows < height))[:, None] & ((cols >= 0) & (cols < width))[None, :]


def _grid_of(href: str, location: str) -> tuple[int, int, str, tuple[float, ...], float | None, list[str], dict]:
    try:
        with rasterio.open(href) as src:
            if src.crs is None:
                raise InvalidRasterError(f"{location}: raster has no CRS; set one (e.g. gdal_edit.py -a_srs EPSG:...)")
            return (src.width, src.height, src.crs.to_wkt(), tuple(src.transform)[:6], src.nodata,
                    list(src.descriptions), src.tags())
    except rasterio.errors.RasterioIOError as err:
        raise InvalidRasterError(f"{location}: cannot read raster: {err}") from err


def open_source(
    path: str | Path, band_names: list[str] | None = None, product_level: str | None = None
) -> RasterSource:
    """Describe a GeoTIFF or a STAC item JSON file as a `RasterSource`.

    Args:
        path: a raster file, or a STAC item `.json`.
        band_names: names of the file's bands when its band descriptions are missing or wrong.
        product_level: processing level (L1C, L2A…) when the input does not record it.

    Raises:
        InputNotFoundError: the file does not exist.
        InvalidRasterError: no CRS, unreadable file.
    """
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"input not found: {path}")
    if path.suffix.lower() == ".json":
        return _source_from_item(path, product_level)
    width, height, wkt, transform, nodata, descriptions, tags = _grid_of(str(path), str(path))
    names = band_names or [d for d in descriptions if d]
    if len(names) != len(descriptions):
        raise BandMismatchError(
            f"{path}: {len(descriptions)} bands but {len(names)} band names; "
            "name the bands (band descriptions, or --bands B01,B02,...)"
        )
    level = product_level or tags.get("PROCESSING_LEVEL") or tags.get("processing:level")
    refs = tuple(BandRef(canonical_s2_name(n), str(path.resolve()), i + 1) for i, n in enumerate(names))
    return RasterSource(path.stem, str(path), refs, level, width, height, wkt, transform, nodata)


def _source_from_item(path: Path, product_level: str | None) -> RasterSource:
    try:
        item = json.loads(path.read_text(encoding="utf-8"))
        assets = item["assets"]
    except (ValueError, KeyError) as err:
        raise InvalidRasterError(f"{path}: not a STAC item JSON ({err})") from err
    base = path.parent
    refs: list[BandRef] = []
    for key, asset in assets.items():
        if "data" not in asset.get("roles", ["data"]):
            continue
        href = asset["href"]
        href = href if Path(href).is_absolute() or "://" in href else str((base / href).resolve())
        eo_bands = asset.get("eo:bands") or asset.get("bands") or []
        if len(eo_bands) > 1:
            refs += [BandRef(canonical_s2_name(b["name"]), href, i + 1) for i, b in enumerate(eo_bands)]
        elif eo_bands:
            refs.append(BandRef(canonical_s2_name(eo_bands[0]["name"]), href, 1))
        else:
            refs.append(BandRef(canonical_s2_name(key), href, 1))
    if not refs:
        raise InvalidRasterError(f"{path}: STAC item has no data asset")
    # the reading grid is the finest grid among the data assets
    grids = {r.href: _grid_of(r.href, f"{path} asset {r.name}") for r in refs}
    finest = min(grids, key=lambda h: abs(grids[h][3][0]))
    width, height, wkt, transform, nodata, _, _ = grids[finest]
    level = product_level or item.get("properties", {}).get("processing:level")
    scale = 1.0
    return RasterSource(item.get("id", path.stem), str(path), tuple(refs), level, width, height, wkt, transform,
                        nodata, scale)
