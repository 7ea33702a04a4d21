"""Asset files over http(s), with Range requests (`/vsicurl/`, odc-stac, QGIS read them): published layers'
(`/assets/{layer}/{key}`) and input imagery's (`/assets/inputs/{collection}/{item}/{key}`). The STAC API gives
these URLs as asset hrefs in place of the local paths stored (`asset_url`); `file://` stays only in a static export.

An input asset is served only when an item of the inputs store (the STAC API's database, or the static input
catalog) names it and its file lies in the input catalog or the sample data folder: nothing from the request
reaches a file path, and an item posted with a hostile href exposes nothing else.
"""

from __future__ import annotations

import contextlib
import functools
import mimetypes
import re
import time
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import quote, urlsplit
from urllib.request import url2pathname

import attrs
from fastapi import APIRouter, Path
from fastapi.responses import FileResponse

from geovigie.errors import GeovigieError, InputNotFoundError, LayerNotFoundError
from geovigie.service.errors import ERROR_RESPONSES
from geovigie.settings import Settings
from geovigie.tiles import RESULTS_COLLECTION, LayerIndex, inputs_store_for

ASSET_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
MEDIA_TYPES = {".tif": "image/tiff; application=geotiff; profile=cloud-optimized", ".geojson": "application/geo+json",
               ".gpkg": "application/geopackage+sqlite3", ".json": "application/json", ".csv": "text/csv"}


INPUT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")
INPUTS_PREFIX = "/assets/inputs"
LOOKUP_TTL_S = 30.0
"""How long an input asset's file is remembered (GDAL reads one file with many Range requests)."""


def asset_url(base_url: str, collection: str, item_id: str, key: str, href: str) -> str | None:
    """The service's URL of an item's local asset (`file://`, absolute or relative href): a published layer's under
    `/assets/{layer}/{key}`, an input item's under `/assets/inputs/{collection}/{item}/{key}`; None for remote
    hrefs (left as they are) and ids the routes would refuse."""
    if not ASSET_KEY.match(key) or ("://" in href and not href.startswith("file://")):
        return None
    base = base_url.rstrip("/")
    if collection == RESULTS_COLLECTION:
        return f"{base}/assets/{item_id}/{key}"
    if not INPUT_ID.match(collection) or not INPUT_ID.match(item_id):
        return None
    return f"{base}{INPUTS_PREFIX}/{quote(collection)}/{quote(item_id)}/{key}"


def _local_path(href: str) -> FilePath | None:
    if href.startswith("file://"):
        return FilePath(url2pathname(urlsplit(href).path))
    return None if "://" in href else FilePath(href)


@attrs.define
class InputAssetFactory:
    """`/assets/inputs/{collection}/{item_id}/{asset}`: an input item's asset file (imagery the jobs read)."""

    settings: Settings
    router: APIRouter = attrs.field(factory=APIRouter)
    store: Any = attrs.field(init=False, default=None)
    roots: tuple[FilePath, ...] = attrs.field(init=False, default=())
    _lookup: Any = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        roots = [self.settings.catalog_dir.resolve()]
        with contextlib.suppress(InputNotFoundError):  # no sample data: only the input catalog's files
            roots.append(self.settings.sample_data_path().resolve())
        self.roots = tuple(roots)
        self._lookup = functools.lru_cache(maxsize=512)(self._find)
        self.register_routes()

    def _find(self, collection: str, item_id: str, key: str, period: int) -> FilePath | None:
        """The asset's file, or None (`period` expires the cached answer every LOOKUP_TTL_S)."""
        if self.store is None:
            self.store = inputs_store_for(self.settings)
        try:
            item = self.store.get(collection, item_id)
        except GeovigieError:
            return None
        asset = item.assets.get(key)
        path = _local_path(asset.get_absolute_href() or "") if asset is not None else None
        if path is None:
            return None
        path = path.resolve()
        return path if path.is_file() and any(path.is_relative_to(root) for root in self.roots) else None

    def path(self, collection: str, item_id: str, key: str) -> FilePath:
        """The file of asset `key` of input item `item_id`.

        Raises:
            LayerNotFoundError: no such item or asset, or its file is not a local file of the input catalog or the
                sample data.
        """
        found = None
        if INPUT_ID.match(collection) and INPUT_ID.match(item_id) and ASSET_KEY.match(key):
            found = self._lookup(collection, item_id, key, int(time.monotonic() // LOOKUP_TTL_S))
        if found is None or not found.is_file():
            raise LayerNotFoundError(f"input item {item_id[:60]!r} of {collection[:60]!r} has no asset {key[:40]!r} "
                                     "served here")
        return found

    def register_routes(self) -> None:
        """Add the endpoint to `self.router`."""

        @self.router.get(INPUTS_PREFIX + "/{collection}/{item_id}/{asset}", response_class=FileResponse,
                         responses=ERROR_RESPONSES, tags=["inputs"],
                         summary="An input item's asset file (Range requests supported).")
        def input_asset(collection: Annotated[str, Path(description="Input collection id")],
                        item_id: Annotated[str, Path(description="Input item id")],
                        asset: Annotated[str, Path(description="Asset key of the item")]) -> FileResponse:
            path = self.path(collection, item_id, asset)
            media = MEDIA_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
            return FileResponse(path, media_type=media or "application/octet-stream",
                                headers={"Cache-Control": "max-age=60"}, filename=path.name,
                                content_disposition_type="inline")


@attrs.define
class AssetFactory:
    """`/assets/{layer_id}/{asset}`: a layer's asset file, addressed by the item's id and asset key."""

    index: LayerIndex
    router: APIRouter = attrs.field(factory=APIRouter)

    def __attrs_post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        """Add the endpoint to `self.router`."""

        @self.router.get("/assets/{layer_id}/{asset}", response_class=FileResponse, responses=ERROR_RESPONSES,
                         summary="A layer's asset file (Range requests supported).", tags=["layers"])
        def layer_asset(layer_id: Annotated[str, Path(description="Layer (item) id")],
                        asset: Annotated[str, Path(description="Asset key of the item, e.g. data")]) -> FileResponse:
            if not ASSET_KEY.match(asset):
                raise LayerNotFoundError(f"layer {layer_id[:40]!r} has no asset {asset[:40]!r}")
            path = self.index.asset_path(layer_id, asset)
            media = MEDIA_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
            return FileResponse(path, media_type=media or "application/octet-stream",
                                headers={"Cache-Control": "max-age=60"},
                                filename=f"{layer_id}-{asset}{path.suffix}", content_disposition_type="inline")
