"""A STAC item for any raster file (GeoTIFF, COG...), with rio-stac: what `catalog add` and the diagnose commands
use when they are given a file instead of an item.

The asset points at the file where it is (absolute href): the item describes it, nothing is copied.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pystac

from geovigie.catalog.stac._datetime import to_interval
from geovigie.catalog.stac._store import check_id
from geovigie.errors import InputNotFoundError, InvalidInputError, InvalidRasterError

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _moment(text: str | datetime | None, path: Path) -> datetime:
    if text is None or (isinstance(text, str) and not text.strip()):
        raise InvalidInputError(f"{path}: a raster file carries no acquisition date; give it with --datetime "
                                "(ISO 8601, e.g. 2023-07-14T10:30:00Z)")
    start, end = to_interval(text)
    if start is None or end is None or (isinstance(text, str) and "/" in text):
        raise InvalidInputError(f"--datetime {text!r}: give one instant or day, not an interval")
    return start


def raster_item(path: str | Path, *, datetime_: str | datetime | None, collection: str | None = None,
                asset: str = "data", item_id: str | None = None, unit: str | None = None) -> pystac.Item:
    """A STAC item (proj and raster extensions) describing the raster `path`, dated `datetime_`.

    `unit` (e.g. "celsius", "kelvin") is written into every band's `raster:bands` unit when given; otherwise the
    file's own band units are kept.

    Raises:
        InputNotFoundError: no such file.
        InvalidRasterError: not a readable raster, or a raster without CRS.
        InvalidInputError: no or malformed datetime, bad collection or item id.
    """
    import rasterio
    from rasterio.errors import RasterioIOError
    from rio_stac import create_stac_item

    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"raster not found: {path}")
    moment = _moment(datetime_, path)
    ident = check_id(item_id or _SAFE.sub("-", path.stem).strip("-.") or "raster")
    if collection is not None:
        check_id(collection, "collection id")
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise InvalidRasterError(f"{path}: raster has no CRS; georeference it first")
            item = create_stac_item(src, input_datetime=moment, collection=collection, id=ident,
                                    asset_name=asset, asset_roles=["data"], asset_href=str(path.resolve()),
                                    with_proj=True, with_raster=True)
    except RasterioIOError as err:
        raise InvalidRasterError(f"{path}: not a readable raster ({err})") from err
    _projection_v2(item)
    if unit is not None:
        for band in item.assets[asset].extra_fields.get("raster:bands", []):
            band["unit"] = unit
    item.properties["geovigie:source_file"] = str(path.resolve())
    return item


def _projection_v2(item: pystac.Item) -> None:
    """rio-stac writes projection v1.1 (`proj:epsg`); geovigie writes v2.0 everywhere (`proj:code`)."""
    from pystac.extensions.projection import ProjectionExtension

    old = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
    if old not in item.stac_extensions:
        return
    item.stac_extensions.remove(old)
    ProjectionExtension.add_to(item)
    epsg = item.properties.pop("proj:epsg", None)
    item.properties["proj:code"] = f"EPSG:{epsg}" if epsg is not None else None


def is_raster_file(path: str | Path) -> bool:
    """True when `path` is not a JSON document (a STAC item) but some other file (a raster, presumably)."""
    path = Path(path)
    if path.suffix.lower() in (".json", ".geojson"):
        return False
    try:
        with path.open("rb") as handle:
            head = handle.read(64).lstrip()
    except OSError:
        return False
    if head.startswith(b"{"):
        try:
            json.loads(path.read_text(encoding="utf-8"))
            return False
        except (UnicodeDecodeError, ValueError):
            return True
    return True
