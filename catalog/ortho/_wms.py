"""Fetch an area from a WMS (IGN Géoplateforme by default) into one Cloud Optimized GeoTIFF and a STAC item.

The area (EPSG:2154) is snapped outward to the resolution grid, then cut into GetMap requests no larger than
the server accepts: `max_size` (4096 px by default) and, when the GetCapabilities document gives them, its
`MaxWidth` / `MaxHeight`. Tiles are written one at a time into the COG (memory bounded by one tile). Connection
errors, timeouts, 429/502/503/504 answers are retried with exponential backoff (`geovigie.http`); a WMS exception
report, an HTML page or an image of the wrong size raises `WmsError` with the server's own words.
"""

from __future__ import annotations

import difflib
import math
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

from geovigie.catalog.ortho._ingest import ORTHO_CRS, ortho_item
from geovigie.cog import cog_writer
from geovigie.errors import EmptyInputError, InvalidInputError, RemoteSourceError
from geovigie.http import RetryPolicy, describe_failure, http_client, resolve_timeout, send
from geovigie.progress import progress_bar

GEOPLATEFORME_WMS = "https://data.geopf.fr/wms-r/wms"
ORTHO_LAYERS = {"rvb": "ORTHOIMAGERY.ORTHOPHOTOS", "irc": "ORTHOIMAGERY.ORTHOPHOTOS.IRC"}
"""Géoplateforme layers of the latest orthophotos, natural colour and colour infrared."""
DEFAULT_MAX_SIZE = 4096
MAX_PIXELS = 40_000 * 40_000
"""Refuse outputs beyond this many pixels (a 20 × 20 km AOI at 0.5 m is 1.6e9)."""
FORMATS = ("image/jpeg", "image/png")
LAMBERT93_AREA = (-400_000.0, 5_900_000.0, 1_400_000.0, 7_300_000.0)
"""A generous box around metropolitan France and Corsica in Lambert-93 metres (sanity check of the AOI)."""


class WmsError(RemoteSourceError):
    """A WMS is unreachable, timed out, or answered an exception report or something that is not the image asked."""


@dataclass(frozen=True)
class WmsCapabilities:
    """What a GetCapabilities document says that matters here."""

    layers: tuple[str, ...]
    formats: tuple[str, ...]
    max_width: int | None
    max_height: int | None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def service_exception(body: bytes) -> str | None:
    """The text of a WMS exception report (`code: message`, several joined by `; `), or None if it is not one."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    if _local(root.tag) not in ("ServiceExceptionReport", "ExceptionReport"):
        return None
    messages = []
    for element in root.iter():
        if _local(element.tag) in ("ServiceException", "ExceptionText"):
            text = " ".join("".join(element.itertext()).split())
            code = element.get("code") or element.get("exceptionCode")
            messages.append(f"{code}: {text}" if code else text)
    return "; ".join(m for m in messages if m) or "an exception report without text"


def parse_capabilities(body: bytes, url: str) -> WmsCapabilities:
    """Layer names, GetMap formats and size limits of a WMS 1.1.1 / 1.3.0 capabilities document.

    Raises:
        WmsError: an exception report, or not a WMS capabilities document.
    """
    if (report := service_exception(body)) is not None:
        raise WmsError(f"WMS {url} refused GetCapabilities: {report}")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as err:
        raise WmsError(f"WMS {url}: the GetCapabilities answer is not XML ({err})") from err
    if _local(root.tag) not in ("WMS_Capabilities", "WMT_MS_Capabilities"):
        raise WmsError(f"WMS {url}: the GetCapabilities answer is a <{_local(root.tag)}> document, "
                       "not WMS capabilities")
    layers, formats, limits = [], [], {}
    for element in root.iter():
        name = _local(element.tag)
        if name == "Layer":
            named = next((c for c in element if _local(c.tag) == "Name"), None)
            if named is not None and named.text:
                layers.append(named.text.strip())
        elif name in ("MaxWidth", "MaxHeight") and (element.text or "").strip().isdigit():
            limits[name] = int(element.text.strip())  # type: ignore[union-attr]
        elif name == "GetMap":
            formats += [(c.text or "").strip() for c in element if _local(c.tag) == "Format"]
    return WmsCapabilities(layers=tuple(layers), formats=tuple(formats), max_width=limits.get("MaxWidth"),
                           max_height=limits.get("MaxHeight"))


class WmsClient:
    """GetCapabilities and GetMap (WMS 1.3.0) under the one HTTP policy (`geovigie.http`): the settings' timeout
    (`http_timeout`, when configured, wins over `timeout`), connection errors, timeouts and 429/502/503/504 retried
    `retries` times with exponential backoff."""

    def __init__(self, url: str, *, timeout: float | None = None, retries: int = 3, backoff: float = 0.5,
                 transport: Any = None) -> None:
        self.url = url
        self.policy = RetryPolicy(retries, backoff)
        self.requests = 0
        """GetMap requests sent (retries included)."""
        self.timeout = resolve_timeout(timeout)
        self._http = http_client(self.timeout, transport=transport, event_hooks={"request": [self._count]})

    def _count(self, request: Any) -> None:
        if request.url.params.get("REQUEST") == "GetMap":
            self.requests += 1

    def __enter__(self) -> WmsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def _get(self, params: dict[str, str], what: str) -> Any:
        import httpx

        try:
            return send(self._http, "GET", self.url, self.policy, params=params)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as err:
            raise InvalidInputError(f"WMS URL {self.url!r} is not a valid http(s) URL ({err})") from err
        except httpx.HTTPError as err:
            reason = describe_failure(err, self.timeout) or f"{type(err).__name__}: {err}"
            raise WmsError(f"WMS {self.url}: cannot connect for {what} ({reason})") from err

    def capabilities(self) -> WmsCapabilities:
        """The server's GetCapabilities (WMS 1.3.0), parsed.

        Raises:
            WmsError: unreachable, HTTP error, exception report, not capabilities.
        """
        response = self._get({"SERVICE": "WMS", "VERSION": "1.3.0", "REQUEST": "GetCapabilities"}, "GetCapabilities")
        if response.status_code != 200 and service_exception(response.content) is None:
            raise WmsError(f"WMS {self.url}: HTTP {response.status_code} on GetCapabilities: {_snippet(response)}")
        return parse_capabilities(response.content, self.url)

    def get_map(self, layer: str, bbox: tuple[float, float, float, float], width: int, height: int,
                image_format: str, crs: str = ORTHO_CRS) -> tuple[np.ndarray, np.ndarray | None]:
        """One GetMap image: (bands, height, width) uint8 colour bands and, for images with alpha, the alpha band.

        Raises:
            WmsError: exception report, HTTP error, not an image, or an image of another size.
        """
        params = {"SERVICE": "WMS", "VERSION": "1.3.0", "REQUEST": "GetMap", "LAYERS": layer, "STYLES": "",
                  "CRS": crs, "BBOX": ",".join(f"{v:.6f}".rstrip("0").rstrip(".") for v in bbox),
                  "WIDTH": str(width), "HEIGHT": str(height), "FORMAT": image_format}
        if image_format == "image/png":
            params["TRANSPARENT"] = "TRUE"
        what = f"GetMap of layer {layer!r} over {params['BBOX']} ({width} × {height} px)"
        response = self._get(params, what)
        body: bytes = response.content
        if (report := service_exception(body)) is not None:
            raise WmsError(f"WMS {self.url} refused {what}: {report}")
        if response.status_code != 200:
            raise WmsError(f"WMS {self.url}: HTTP {response.status_code} on {what}: {_snippet(response)}")
        if not response.headers.get("content-type", "").startswith("image/"):
            raise WmsError(f"WMS {self.url} answered {response.headers.get('content-type', 'no content type')} to "
                           f"{what}, not an image: {_snippet(response)}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                with rasterio.MemoryFile(body) as memory, memory.open() as image:
                    pixels = image.read()
        except rasterio.errors.RasterioIOError as err:
            raise WmsError(f"WMS {self.url}: the answer to {what} is not a readable image ({err})") from err
        if pixels.shape[1:] != (height, width):
            raise WmsError(f"WMS {self.url} returned a {pixels.shape[2]} × {pixels.shape[1]} px image for {what}")
        if pixels.dtype != np.uint8:
            raise WmsError(f"WMS {self.url} returned {pixels.dtype} pixels for {what}; expected 8-bit colour")
        if pixels.shape[0] in (2, 4):  # grey + alpha or RGBA
            return pixels[:-1], pixels[-1]
        return pixels, None


def _snippet(response: Any) -> str:
    text = " ".join(response.text.split()) if response.content else "(empty body)"
    return text[:200]


@dataclass(frozen=True)
class Grid:
    """The output grid: origin (left, top), pixel size and shape, in EPSG:2154."""

    left: float
    top: float
    resolution: float
    width: int
    height: int

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the whole grid."""
        return (self.left, self.top - self.height * self.resolution, self.left + self.width * self.resolution,
                self.top)

    def window_bbox(self, window: Window) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of a window of the grid."""
        r = self.resolution
        left, top = self.left + window.col_off * r, self.top - window.row_off * r
        return (left, top - window.height * r, left + window.width * r, top)


def snap_grid(bbox: tuple[float, float, float, float], resolution_m: float) -> Grid:
    """The grid of `resolution_m` pixels, aligned on multiples of the resolution, that covers `bbox` (EPSG:2154).

    Raises:
        InvalidInputError: empty, inverted or non-Lambert-93 bbox, non-positive resolution, too many pixels.
    """
    xmin, ymin, xmax, ymax = (float(v) for v in bbox)
    if not resolution_m > 0 or not math.isfinite(resolution_m):
        raise InvalidInputError(f"resolution {resolution_m} m: give a positive number of metres (e.g. 0.5)")
    if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)) or xmin >= xmax or ymin >= ymax:
        raise InvalidInputError(f"bbox {bbox}: give xmin,ymin,xmax,ymax with xmin < xmax and ymin < ymax")
    if all(abs(v) <= 360 for v in (xmin, ymin, xmax, ymax)):
        raise InvalidInputError(f"bbox {bbox} looks like longitude/latitude degrees; give {ORTHO_CRS} (Lambert-93) "
                                "metres, e.g. 574000,6278000,576000,6280000")
    west, south, east, north = LAMBERT93_AREA
    if xmax < west or xmin > east or ymax < south or ymin > north:
        raise InvalidInputError(f"bbox {bbox} is outside the Lambert-93 area of France ({ORTHO_CRS} metres expected)")
    left, top = math.floor(xmin / resolution_m) * resolution_m, math.ceil(ymax / resolution_m) * resolution_m
    width = math.ceil(round((xmax - left) / resolution_m, 6))
    height = math.ceil(round((top - ymin) / resolution_m, 6))
    if width * height > MAX_PIXELS:
        raise InvalidInputError(f"bbox {bbox} at {resolution_m} m is {width} × {height} px, more than "
                                f"{MAX_PIXELS:.0e}: take a smaller area or a coarser resolution")
    return Grid(left=left, top=top, resolution=resolution_m, width=width, height=height)


def plan_tiles(width: int, height: int, max_width: int, max_height: int) -> Iterator[Window]:
    """Row-major windows covering width × height, each at most max_width × max_height, of near-equal sizes."""
    cols, rows = math.ceil(width / max_width), math.ceil(height / max_height)
    xs = [round(i * width / cols) for i in range(cols + 1)]
    ys = [round(j * height / rows) for j in range(rows + 1)]
    for j in range(rows):
        for i in range(cols):
            yield Window(xs[i], ys[j], xs[i + 1] - xs[i], ys[j + 1] - ys[j])


def layer_kind(layer: str) -> str:
    """`irc` for a colour-infrared layer (its name has an IRC token), else `rvb`."""
    return "irc" if "IRC" in layer.upper().replace("-", ".").replace("_", ".").split(".") else "rvb"


def fetch_wms(url: str, layer: str, bbox: tuple[float, float, float, float], resolution_m: float, out: str | Path,
              *, image_format: str = "image/jpeg", max_size: int | None = None, item_id: str | None = None,
              timeout: float | None = None, retries: int = 3, backoff: float = 0.5, progress: bool = False,
              transport: Any = None) -> pystac.Item:
    """Fetch `layer` over `bbox` (EPSG:2154) at `resolution_m` into the COG `out` and return its STAC item.

    The item (id `item_id`, else the file stem) has one `image` asset pointing to `out`, proj/raster/eo
    descriptions (red green blue, or nir red green for IRC layers) and `gsd`; `geovigie:wms` records the URL,
    layer, format and the number of GetMap requests. The WMS gives no acquisition date: `datetime` is the time of
    the download, said in `geovigie:note`.

    Raises:
        InvalidInputError: bad bbox, resolution, format or size limit, or a layer the server does not offer.
        WmsError: the server is unreachable or answers an error.
        EmptyInputError: the server returned only transparent pixels (AOI outside its coverage).
    """
    if image_format not in FORMATS:
        raise InvalidInputError(f"image format {image_format!r}: use one of {', '.join(FORMATS)}")
    if max_size is not None and max_size < 1:
        raise InvalidInputError(f"max size {max_size} px: give a positive number of pixels")
    grid = snap_grid(bbox, resolution_m)
    out = Path(out)
    with WmsClient(url, timeout=timeout, retries=retries, backoff=backoff, transport=transport) as client:
        caps = client.capabilities()
        if layer not in caps.layers:
            close = difflib.get_close_matches(layer, caps.layers, n=5, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else f" ({len(caps.layers)} layers offered)"
            raise InvalidInputError(f"layer {layer!r} is not offered by the WMS {url}{hint}")
        if caps.formats and image_format not in caps.formats:
            raise InvalidInputError(f"the WMS {url} does not serve {image_format} "
                                    f"(it serves {', '.join(caps.formats)})")
        limit = max_size or DEFAULT_MAX_SIZE
        max_w, max_h = min(limit, caps.max_width or limit), min(limit, caps.max_height or limit)
        windows = list(plan_tiles(grid.width, grid.height, max_w, max_h))
        kind = layer_kind(layer)
        names = ["NIR", "red", "green"] if kind == "irc" else ["red", "green", "blue"]
        profile = {"driver": "GTiff", "dtype": "uint8", "count": 3, "width": grid.width, "height": grid.height,
                   "crs": ORTHO_CRS, "transform": from_origin(grid.left, grid.top, grid.resolution, grid.resolution),
                   "nodata": None}
        seen = 0
        tags = {"WMS_URL": url, "WMS_LAYER": layer, "WMS_FORMAT": image_format}
        with progress_bar(f"fetching {layer}", total=len(windows), enabled=progress) as advance, \
                rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), \
                cog_writer(out, profile=profile, band_descriptions=names, overview_resampling="average",
                           tags=tags) as dst:
            for window in windows:
                pixels, alpha = client.get_map(layer, grid.window_bbox(window), int(window.width),
                                               int(window.height), image_format)
                if pixels.shape[0] == 1:
                    pixels = np.repeat(pixels, 3, axis=0)
                dst.write(pixels[:3], window=window)
                if alpha is not None:  # transparent where the layer has no data: an internal mask
                    dst.write_mask(np.where(alpha > 0, 255, 0).astype("uint8"), window=window)
                    seen += int(np.count_nonzero(alpha))
                else:
                    seen += int(window.width * window.height)
                advance(1)
            if seen == 0:
                raise EmptyInputError(f"the WMS {url} returned only transparent pixels for layer {layer!r} over "
                                      f"{grid.bbox}: is the area outside the layer's coverage?")
        requests = client.requests
    now = datetime.now(UTC)
    props: dict[str, object] = {
        "geovigie:wms": {"url": url, "layer": layer, "format": image_format, "requests": requests,
                         "tiles": len(windows), "max_width": max_w, "max_height": max_h},
        "geovigie:note": "acquisition date not given by the WMS: datetime is the time of the download",
        "geovigie:ortho_kind": kind, "created": now.isoformat().replace("+00:00", "Z"),
    }
    if url == GEOPLATEFORME_WMS:
        props["providers"] = [{"name": "IGN", "roles": ["producer", "licensor", "host"],
                               "url": "https://geoservices.ign.fr"}]
    return ortho_item(item_id or out.stem, out, kind, media_type=pystac.MediaType.COG, roles=["data"], when=now,
                      properties=props)
