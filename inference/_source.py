"""Raster inputs for inference: a GeoTIFF or a STAC item, read one window at a time."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import pystac
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from geovigie.bands import canonical_s2_name
from geovigie.catalog.stac import read_item
from geovigie.digests import sha256_of
from geovigie.errors import BandMismatchError, GeovigieError, InputNotFoundError, InvalidRasterError, RemoteSourceError
from geovigie.paths import HASH_CHARS, SAFE_NAME_MAX, printable, safe_name
from geovigie.settings import get_settings

HTTP_ENV = {"GDAL_HTTP_CONNECTTIMEOUT": 10, "GDAL_HTTP_MAX_RETRY": 3,
            "GDAL_HTTP_RETRY_DELAY": 1, "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}
"""GDAL settings for remote assets, passed with each open (never set globally); see `http_env`."""

SAMPLE_WINDOWS_PER_SIDE = 3
SAMPLE_WINDOW_SIZE = 128
"""Input checks read at most 3 × 3 windows of 128² pixels (the whole raster when it is smaller)."""

_REMOTE_REASONS = (
    (re.compile(r"HTTP response code: (\d+)"), "HTTP {0}"),
    (re.compile(r"Empty reply|Recv failure|Connection (was )?reset|connection closed|closed connection", re.I),
     "the server closed the connection without answering"),
    (re.compile(r"Couldn't connect|Connection refused|Failed to connect", re.I),
     "connection refused: nothing listens at this address"),
    (re.compile(r"Timeout was reached|timed out", re.I), "no answer within {timeout} s"),
    (re.compile(r"not recognized as being in a supported file format", re.I),
     "not a raster GDAL can read (not a GeoTIFF?)"),
)
"""GDAL/curl messages about remote files -> what to tell the user."""


def http_env() -> dict[str, Any]:
    """`HTTP_ENV`, with the settings' `http_timeout` (`GEOVIGIE_HTTP_TIMEOUT`, seconds, rounded up) as GDAL's."""
    env: dict[str, Any] = dict(HTTP_ENV)
    env["GDAL_HTTP_TIMEOUT"] = max(1, math.ceil(get_settings().http_timeout))
    env["GDAL_HTTP_CONNECTTIMEOUT"] = min(env["GDAL_HTTP_CONNECTTIMEOUT"], env["GDAL_HTTP_TIMEOUT"])
    return env


def _unreadable(href: str, location: str, error: Exception) -> GeovigieError:
    """The error to raise when GDAL cannot open or read `href`: `RemoteSourceError` for remote files."""
    messages: list[str] = []
    cause: BaseException | None = error
    while cause is not None and len(messages) < 8:  # GDAL's own words are in the chained CPLE errors
        messages.append(" ".join(str(cause).split()))
        cause = cause.__cause__ or cause.__context__
    text = messages[-1] if "previous exception" in messages[0] else messages[0]
    if not href.startswith("/vsi"):
        hint = " (truncated or corrupt file?)" if len(messages) > 1 else ""
        return InvalidRasterError(f"{location}: cannot read raster: {text}{hint}")
    url = href.removeprefix("/vsicurl/")
    for pattern, reason in _REMOTE_REASONS:
        if found := pattern.search(" ".join(messages)):
            timeout = http_env()["GDAL_HTTP_TIMEOUT"]
            return RemoteSourceError(f"{location}: {url}: {reason.format(*found.groups(), timeout=timeout)}")
    return RemoteSourceError(f"{location}: {url}: cannot read remote raster: {text.replace(href, url)}")


@dataclass(frozen=True)
class BandRef:
    """Where one band lives: a file and its 1-based band index."""

    name: str
    href: str
    index: int
    identity: str = ""
    """What changes when the file changes: size and mtime locally; checksum, size or href for remote assets."""


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
    fingerprint: str = ""
    """A raster file's content SHA-256 (hex); empty for STAC items, whose id is their identity."""
    passes: tuple[str, ...] = ()
    """A multi-date input (`stack_passes`): the location of each pass, target first; empty: one pass."""

    @property
    def key(self) -> str:
        """The input's name in output file names and layer ids: a STAC item's id (cleaned and hashed when it is not
        a safe file name, `geovigie.paths.safe_name`); a file's stem and the first 8 hex digits of its content's
        SHA-256, so that one file named by two paths is one input, and two files of one name are two.

        Raises:
            InvalidInputError: the id has no letter or digit to name a file by (empty, `..`, control characters).
        """
        if not self.fingerprint:
            return safe_name(self.id, "item id")
        return f"{safe_name(self.id, 'file name', SAFE_NAME_MAX - HASH_CHARS - 1)}-{self.fingerprint[:HASH_CHARS]}"

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
        return dataclasses.replace(self, bands=tuple(by_name[n] for n in names))

    def read(self, window: Window, fill: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Read one window; see `read_windows`."""
        return self.read_windows([window], fill)[0]

    def read_windows(
        self, windows: list[Window], fill: np.ndarray | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Read windows (may extend past the edges) as float32 (bands, rows, cols) and validity masks.

        Each file is opened once for all `windows` (and closed after). Pixels outside the raster,
        equal to nodata or not finite are invalid and set to `fill` (one value per band, default 0).
        Only the part of a window inside the raster is read, with plain windowed reads (masked or
        boundless reads cost about 5 times more).
        """
        fill = np.zeros(len(self.bands), np.float32) if fill is None else np.asarray(fill, np.float32)
        with self._readers() as (by_file, readers):
            return [self._read_one(window, by_file, readers, fill) for window in windows]

    def read_native(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Read one window (bands, rows, cols) in the bands' own data type (their common type when they differ).

        Invalid pixels (outside the raster, nodata, not finite) are flagged in the mask and left as read (0 outside
        the raster): the caller fills them after its own conversion. One read of a chunk, cut into tiles in memory,
        replaces one read per overlapping tile.
        """
        with self._readers() as (by_file, readers):
            dtype = np.result_type(*[readers[b.href][0].dtypes[b.index - 1] for b in self.bands])
            return self._read_one(window, by_file, readers, None, dtype)

    @contextlib.contextmanager
    def _readers(self) -> Iterator[tuple[dict[str, list[tuple[int, int]]], dict[str, Any]]]:
        """The bands grouped by file (position, 1-based index), and each file opened once."""
        by_file: dict[str, list[tuple[int, int]]] = {}
        for position, band in enumerate(self.bands):
            by_file.setdefault(band.href, []).append((position, band.index))
        with contextlib.ExitStack() as stack:
            stack.enter_context(rasterio.Env(**http_env()))
            yield by_file, {href: stack.enter_context(self._open(href)) for href in by_file}

    def sample_windows(self, per_side: int = SAMPLE_WINDOWS_PER_SIDE, size: int = SAMPLE_WINDOW_SIZE) -> list[Window]:
        """Up to `per_side`² windows of `size`² pixels spread evenly over the grid (one window when it is small)."""
        width, height = min(size, self.width), min(size, self.height)
        cols = sorted({round(c) for c in np.linspace(0, self.width - width, per_side)})
        rows = sorted({round(r) for r in np.linspace(0, self.height - height, per_side)})
        return [Window(col, row, width, height) for row in rows for col in cols]

    def sample(self, per_side: int = SAMPLE_WINDOWS_PER_SIDE, size: int = SAMPLE_WINDOW_SIZE) -> np.ndarray:
        """Raw values (bands, pixels) of the valid pixels of `sample_windows`: a bounded read for input checks."""
        reads = self.read_windows(self.sample_windows(per_side, size))
        return np.concatenate([data[:, valid] for data, valid in reads], axis=1)

    def any_valid(self, block: int = 1024) -> bool:
        """Whether any pixel is valid, reading one block at a time until one is (the whole raster at worst)."""
        for row in range(0, self.height, block):
            for col in range(0, self.width, block):
                window = Window(col, row, min(block, self.width - col), min(block, self.height - row))
                if self.read(window)[1].any():
                    return True
        return False

    @contextlib.contextmanager
    def _open(self, href: str) -> Iterator[tuple[Any, float | None]]:
        """The file, warped onto the reading grid when its own grid differs."""
        try:
            src = rasterio.open(href)
        except rasterio.errors.RasterioIOError as err:
            raise _unreadable(href, self.location, err) from err
        with src:
            same_grid = (src.width, src.height) == (self.width, self.height) and src.crs == self.crs and \
                tuple(src.transform)[:6] == tuple(self.transform[:6])
            if same_grid:
                yield src, src.nodata
                return
            with WarpedVRT(src, crs=self.crs, transform=self.affine, width=self.width, height=self.height,
                           resampling=Resampling.bilinear) as vrt:
                yield vrt, src.nodata

    def _read_one(self, window: Window, by_file: dict[str, list[tuple[int, int]]], readers: dict[str, Any],
                  fill: np.ndarray | None, dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
        rows, cols = int(window.height), int(window.width)
        out = np.zeros((len(self.bands), rows, cols), dtype=dtype)
        valid = np.zeros((rows, cols), dtype=bool)
        inner = _intersection(window, self.width, self.height)
        if inner is not None:
            r0, c0 = int(inner.row_off - window.row_off), int(inner.col_off - window.col_off)
            target = np.s_[r0 : r0 + int(inner.height), c0 : c0 + int(inner.width)]
            region = np.ones((int(inner.height), int(inner.width)), dtype=bool)
            whole = (r0, c0, int(inner.height), int(inner.width)) == (0, 0, rows, cols) and len(by_file) == 1
            for href, refs in by_file.items():
                dataset, nodata = readers[href]
                # one file holding every band in order, window inside the raster: GDAL reads straight into `out`
                direct = whole and [p for p, _ in refs] == list(range(len(self.bands))) and \
                    all(np.dtype(dataset.dtypes[i - 1]) == out.dtype for _, i in refs)
                try:
                    if direct:
                        data = dataset.read([index for _, index in refs], window=inner, out=out)
                    else:
                        data = dataset.read([index for _, index in refs], window=inner, out_dtype=dtype)
                except rasterio.errors.RasterioIOError as err:  # truncated file, server gone mid-run
                    raise _unreadable(href, self.location, err) from err
                if not direct:
                    out[([p for p, _ in refs], *target)] = data
                if data.dtype.kind == "f":
                    region &= np.isfinite(data).all(axis=0)
                if nodata is not None and not np.isnan(nodata):
                    region &= (data != nodata).all(axis=0)
            valid[target] = region
        invalid = ~valid
        if fill is not None and invalid.any():
            out[:, invalid] = fill[:, None]
        return out, valid


PREVIOUS_SUFFIX = "_previous"
"""Band names of the previous pass in a stacked multi-date source."""


def stack_passes(target: RasterSource, previous: RasterSource) -> RasterSource:
    """One source reading the bands of `target`, then the same bands of `previous` (an earlier pass of the same
    place), window by window from both files (memory per window, not per raster).

    Raises:
        InvalidRasterError: the two do not share the grid (CRS, transform, shape) or the bands, naming the previous
            pass's file and what differs.
    """
    problems = []
    if previous.crs != target.crs:
        problems.append(f"CRS {previous.crs.to_string()} differs from {target.crs.to_string()}")
    if (previous.width, previous.height) != (target.width, target.height):
        problems.append(f"shape {previous.width} x {previous.height} px differs from {target.width} x "
                        f"{target.height} px")
    if not np.allclose(previous.transform[:6], target.transform[:6], rtol=0, atol=1e-9):
        problems.append(f"transform {tuple(previous.transform[:6])} differs from {tuple(target.transform[:6])}")
    if previous.band_names != target.band_names:
        problems.append(f"bands {previous.band_names} differ from {target.band_names}")
    if problems:
        raise InvalidRasterError(f"{previous.location}: the previous pass is not on the grid of {target.location}: "
                                 + "; ".join(problems) + " (resample it onto the target's grid first)")
    renamed = tuple(dataclasses.replace(b, name=b.name + PREVIOUS_SUFFIX) for b in previous.bands)
    both = target.fingerprint and previous.fingerprint
    fingerprint = hashlib.sha256(f"{target.fingerprint}+{previous.fingerprint}".encode()).hexdigest() if both else ""
    ident = target.id if both else f"{target.id}+{previous.id}"
    return dataclasses.replace(target, id=ident, bands=target.bands + renamed, fingerprint=fingerprint,
                               passes=(target.location, previous.location))


def _intersection(window: Window, width: int, height: int) -> Window | None:
    col0, row0 = max(0, int(window.col_off)), max(0, int(window.row_off))
    col1 = min(width, int(window.col_off + window.width))
    row1 = min(height, int(window.row_off + window.height))
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


def gdal_path(href: str) -> str:
    """A path GDAL can open: local paths as they are, `file://` URLs decoded, http(s) through /vsicurl/, s3 /vsis3/."""
    parsed = urlparse(href)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    if parsed.scheme in ("http", "https"):
        return f"/vsicurl/{href}"
    if parsed.scheme == "s3":
        return f"/vsis3/{parsed.netloc}{parsed.path}"
    return href


def _identity(path: str, asset: pystac.Asset | None = None) -> str:
    """Local files: size and mtime; remote assets: the checksum or size the item declares, else the href itself."""
    if not path.startswith("/vsi"):
        try:
            stat = os.stat(path)
        except OSError as err:
            raise InputNotFoundError(f"input not found: {path}") from err
        return f"{stat.st_size}:{stat.st_mtime_ns}"
    fields = asset.extra_fields if asset is not None else {}
    declared = [str(fields[k]) for k in ("file:checksum", "file:size") if k in fields]
    return ":".join(declared) or "remote"


def _grid_of(href: str, location: str) -> tuple[int, int, str, tuple[float, ...], float | None, list[str], dict]:
    try:
        with rasterio.Env(**http_env()), rasterio.open(href) as src:
            if src.crs is None:
                raise InvalidRasterError(f"{location}: raster has no CRS; set one (e.g. gdal_edit.py -a_srs EPSG:...)")
            return (src.width, src.height, src.crs.to_wkt(), tuple(src.transform)[:6], src.nodata,
                    list(src.descriptions), src.tags())
    except rasterio.errors.RasterioIOError as err:
        raise _unreadable(href, location, err) from err


def read_input(source: pystac.Item | str | Path) -> pystac.Item | Path:
    """The one place an input's kind is decided: a STAC item (in memory, or a `.json` file, read here) or a raster
    file's path. Callers that need the item (its dates, its self link) read it once here and pass it on.

    Raises:
        InputNotFoundError, InvalidInputError: a `.json` file that is missing or not a STAC item.
    """
    if isinstance(source, pystac.Item):
        return source
    path = Path(source)
    return read_item(path) if path.suffix.lower() == ".json" else path


def open_source(
    source: pystac.Item | str | Path, band_names: list[str] | None = None, product_level: str | None = None,
    digest_cache: str | Path | None = None,
) -> RasterSource:
    """Describe a GeoTIFF, a STAC item JSON file or a `pystac.Item` as a `RasterSource`.

    Asset hrefs may be local paths, `file://`, http(s) (read through GDAL's /vsicurl/) or s3 URLs.

    Args:
        source: a raster file, a STAC item `.json`, or an item already in memory.
        band_names: names of the file's bands when its band descriptions are missing or wrong.
        product_level: processing level (L1C, L2A…) when the input does not record it.
        digest_cache: folder remembering a raster file's content hash while the file is unchanged
            (`geovigie.digests`), so that a rerun does not read the whole file again.

    Raises:
        InputNotFoundError: the file does not exist.
        InvalidRasterError: no CRS, unreadable file, not a STAC item.
    """
    if not isinstance(source, pystac.Item):
        path = Path(source)
        if not path.exists():
            raise InputNotFoundError(f"input not found: {path}")
        if path.is_dir():
            raise InvalidRasterError(f"{path} is a folder: give a raster file or a STAC item JSON")
    source = read_input(source)
    if isinstance(source, pystac.Item):
        # an item without a self link is named by its id in messages: escaped, so that one error stays one line
        return _source_from_item(source, source.get_self_href() or printable(source.id, 200), product_level)
    path = source
    width, height, wkt, transform, nodata, descriptions, tags = _grid_of(str(path), str(path))
    names = band_names or [d for d in descriptions if d]
    if len(names) != len(descriptions):
        raise BandMismatchError(
            f"{path}: {len(descriptions)} bands but {len(names)} band names; "
            "name the bands (band descriptions, or --bands B01,B02,...)"
        )
    level = product_level or tags.get("PROCESSING_LEVEL") or tags.get("processing:level")
    href = str(path.resolve())
    # the whole file, not its first MiB: two uncompressed scenes of one place differ only below their first rows, and
    # a header-only hash would take them for one input, then call the older output up to date. Measured 3.3 s per
    # GiB on the shared 2-core development machine: small beside predicting the same pixels
    fingerprint = sha256_of(path, digest_cache)
    refs = tuple(BandRef(canonical_s2_name(n), href, i + 1, f"sha256:{fingerprint}") for i, n in enumerate(names))
    return RasterSource(path.stem, str(path), refs, level, width, height, wkt, transform, nodata, fingerprint)


def _band_names(asset: pystac.Asset, key: str, location: str) -> list[str]:
    bands = asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands") or []
    if not isinstance(bands, list):
        raise InvalidRasterError(f"{location}: asset {key!r} has eo:bands that is not a list")
    names = []
    for position, band in enumerate(bands):
        if not isinstance(band, dict) or not band.get("name"):
            raise InvalidRasterError(f"{location}: asset {key!r} eo:bands entry {position} has no name")
        names.append(str(band["name"]))
    return names or [key]


def _source_from_item(item: pystac.Item, location: str, product_level: str | None) -> RasterSource:
    refs: list[BandRef] = []
    for key, asset in item.assets.items():
        if "data" not in (asset.roles or ["data"]):
            continue
        href = gdal_path(asset.get_absolute_href() or asset.href)
        identity = _identity(href, asset)
        names = _band_names(asset, key, location)
        refs += [BandRef(canonical_s2_name(name), href, i + 1, identity) for i, name in enumerate(names)]
    if not refs:
        raise InvalidRasterError(f"{location}: STAC item has no data asset")
    # the reading grid is the finest grid among the data assets
    grids = {r.href: _grid_of(r.href, f"{location} asset {r.name}") for r in refs}
    finest = min(grids, key=lambda h: abs(grids[h][3][0]))
    width, height, wkt, transform, nodata, _, _ = grids[finest]
    level = product_level or item.properties.get("processing:level")
    return RasterSource(item.id, location, tuple(refs), level, width, height, wkt, transform, nodata)
