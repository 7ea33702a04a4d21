"""Mosaics of the latest pass over a territory, through titiler-pgstac on the STAC API's pgstac database.

A mosaic is a pgstac search: the items of one collection (for the results collection, of one product: the layers
whose ids differ only by their `-YYYYMMDD` date, e.g. `lst-muenster-20240813`), optionally within the bbox of a
territory, sorted by datetime, newest first, so the newest pass is drawn on top. Every raster collection and every
raster product is a mosaic already (`GET /mosaics`); `POST /mosaics` (a write key) registers one over a territory.

`/mosaics/{mosaic_id}/...` are titiler-pgstac's own endpoints (`MosaicTilerFactory`: tiles, TileJSON, WMTS, point,
assets): a path dependency maps a validated mosaic id and `?datetime=` (one pass, or an interval) to the pgstac
search registered for them, so nothing from the request reaches SQL or a file path. Items' assets are read only
from local files under the service's data folders (`MosaicReader`): any other href is refused.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import attr
import attrs
from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, field_validator
from rio_tiler.colormap import cmap as default_cmap
from rio_tiler.errors import EmptyMosaicError, NoAssetFoundError
from rio_tiler.types import AssetInfo, AssetType, ColorMapType
from titiler.core.dependencies import AssetsExprParams, ColorMapParams, ImageRenderingParams
from titiler.core.errors import BadRequestError
from titiler.mosaic.extensions.wmts import wmtsExtension
from titiler.pgstac import model as pgstac_model
from titiler.pgstac.errors import PGSTAC_STATUS_CODES
from titiler.pgstac.factory import MosaicTilerFactory
from titiler.pgstac.reader import SimpleSTACReader

from geovigie.errors import GeovigieError, InputNotFoundError
from geovigie.postgres import StacDatabase
from geovigie.service.auth import NO_NUL, WRITE_RESPONSES, Access, ApiKey
from geovigie.service.errors import ErrorBody
from geovigie.service.factories import DEFAULT_TMS, GDAL_ENV, SUPPORTED_TMS, TILER_ERRORS
from geovigie.tiles import RESULTS_COLLECTION, ramp_colors

MOSAIC_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
SEARCH_HASH = re.compile(r"^[0-9a-f]{32}$")
DATED_ID = re.compile(r"^(?P<product>.+)-(?P<day>\d{8})$")
RASTER_KINDS = ("classes", "continuous")
SPEC_TTL = 5.0
"""Seconds a mosaic's description (newest item's render, assets) is reused: tiles look it up on every request."""
MAX_PASSES = 200
MAX_REGISTERED = 1024
"""Searches (mosaic, datetime) remembered per process; pgstac keeps every registered one in its `searches` table."""
MosaicId = Annotated[str, PathParam(description="Mosaic id (see /mosaics)")]


class MosaicNotFoundError(GeovigieError, LookupError):
    """No mosaic of that id (404)."""


@dataclass(frozen=True)
class MosaicSpec:
    """What a mosaic shows: one collection (one product of the results collection), optionally in a bbox."""

    id: str
    title: str
    collection: str
    product: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    # from the newest item, not stored with the search
    assets: tuple[str, ...] = ()
    kind: str | None = None
    rescale: tuple[float, float] | None = None
    colormap_name: str | None = None
    colormap: dict[int, tuple[int, int, int, int]] | None = None
    legend: list[dict[str, Any]] = field(default_factory=list)
    unit: str | None = None

    def search(self, when: str | None = None) -> pgstac_model.PgSTACSearch:
        """The pgstac search of this mosaic (items of `when` only, if given), newest first."""
        body: dict[str, Any] = {"collections": [self.collection],
                                "sortby": [{"field": "datetime", "direction": "desc"}]}
        if self.bbox is not None:
            body["bbox"] = list(self.bbox)
        if self.product is not None:
            body["filter"] = {"op": "and", "args": [
                {"op": "like", "args": [{"property": "id"}, f"{self.product}-%"]},
                {"op": "in", "args": [{"property": "geovigie:layer_kind"}, list(RASTER_KINDS)]}]}
            body["filter-lang"] = "cql2-json"
        if when is not None:
            body["datetime"] = when
        return pgstac_model.PgSTACSearch.model_validate(body)

    def stored(self) -> dict[str, Any]:
        """What a registered mosaic keeps in its search's metadata."""
        return {"title": self.title, "collection": self.collection, "product": self.product,
                "bbox": list(self.bbox) if self.bbox else None}


def parse_datetime(value: str) -> str:
    """`?datetime=` as pgstac reads it: an RFC 3339 instant, a day (`2024-08-13`: that whole day) or an interval
    `start/end` of those (`..` open); BadRequestError (400) naming the parameter otherwise."""
    def bound(text: str, end: bool) -> datetime | None:
        text = text.strip()
        if text in ("", ".."):
            return None
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                day = datetime.fromisoformat(text).replace(tzinfo=UTC)
                return day + timedelta(days=1, microseconds=-1) if end else day
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})?", text):
                raise ValueError(text)
            instant = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
        except ValueError:
            raise BadRequestError(f"datetime: cannot read {text[:40]!r}: use 2024-08-13, 2024-08-13T10:51:07Z or "
                                  "an interval start/end ('..' for an open end)") from None
        return instant if instant.tzinfo else instant.replace(tzinfo=UTC)

    def iso(moment: datetime | None) -> str:
        return ".." if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")

    if len(value) > 100 or value.count("/") > 1:
        raise BadRequestError("datetime: one instant, day or interval start/end expected")
    start_text, _, end_text = value.partition("/")
    start, end = bound(start_text, end=False), bound(end_text if "/" in value else start_text, end=True)
    if start is None and end is None:
        raise BadRequestError("datetime: an interval needs at least one end")
    if start is not None and end is not None and start > end:
        raise BadRequestError(f"datetime: the interval starts after it ends ({value[:60]!r})")
    if "/" not in value and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        return iso(start)
    return f"{iso(start)}/{iso(end)}"


def _local_asset(href: str, roots: tuple[Path, ...]) -> str:
    """The local file of an asset href (`file://` URI or absolute path) when it lies under one of `roots`;
    InputNotFoundError for anything else (other URLs, relative paths, files elsewhere or missing)."""
    if href.startswith("file://"):
        path = Path(url2pathname(urlsplit(href).path))
    elif "://" in href or not href.startswith("/"):
        raise InputNotFoundError("an item's asset is not a local file this service reads")
    else:
        path = Path(href)
    resolved = path.resolve()
    if not any(resolved.is_relative_to(root) for root in roots) or not resolved.is_file():
        raise InputNotFoundError("an item's asset is not a file under the service's data folders")
    return str(resolved)


@attr.s
class MosaicReader(SimpleSTACReader):
    """titiler-pgstac's item reader, opening assets only as local files under `roots` (see `_local_asset`)."""

    roots: tuple[Path, ...] = attr.ib(default=())

    def _get_asset_info(self, asset: AssetType) -> AssetInfo:
        info = super()._get_asset_info(asset)
        info["url"] = _local_asset(info["url"], self.roots)
        return info


@dataclass
class _Options:
    """A titiler dependency result (`as_dict()`), for options that are not request parameters."""

    values: dict[str, Any]

    def as_dict(self, exclude_none: bool = True) -> dict[str, Any]:
        return dict(self.values)


class MosaicCatalog:
    """The mosaics of one pgstac database: listing, description (cached), registration of their searches, and
    the connection pool titiler-pgstac reads with (opened on first use, closed by `close`)."""

    def __init__(self, database: StacDatabase) -> None:
        self.database = database
        self._pool: Any = None
        self._lock = threading.Lock()
        self._specs: dict[str, tuple[float, MosaicSpec]] = {}
        self._registered: OrderedDict[tuple[str, str | None, tuple[Any, ...] | None], str] = OrderedDict()
        self.names: dict[str, str] = {}
        """Search hash → mosaic id (WMTS layer names)."""

    def pool(self) -> Any:
        """psycopg pool on the database (search_path pgstac), started with the private cluster if needed."""
        with self._lock:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                self._pool = ConnectionPool(self.database.url(), min_size=1, max_size=4, open=True,
                                            kwargs={"options": "-c search_path=pgstac,public"})
                self._pool.wait()
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.pool().connection() as conn:
            return list(conn.execute(sql, params).fetchall())

    # listing
    def defaults(self) -> list[MosaicSpec]:
        """One mosaic per raster collection, one per raster product of the results collection."""
        specs: list[MosaicSpec] = []
        collections = [row[0] for row in self._rows("SELECT id FROM collections ORDER BY id")]
        for collection in collections:
            if collection != RESULTS_COLLECTION:
                specs.append(MosaicSpec(collection, f"{collection} (newest pass on top)", collection))
        ids = [row[0] for row in self._rows(
            "SELECT id FROM items WHERE collection = %s AND content->'properties'->>'geovigie:layer_kind' = ANY(%s)",
            (RESULTS_COLLECTION, list(RASTER_KINDS)))]
        products = sorted({match["product"] for match in map(DATED_ID.match, ids) if match})
        specs += [MosaicSpec(f"layers.{product}", product, RESULTS_COLLECTION, product) for product in products]
        return specs

    def registered(self) -> list[MosaicSpec]:
        """Mosaics registered with `POST /mosaics`."""
        rows = self._rows("SELECT hash, metadata FROM searches WHERE metadata ? 'geovigie:mosaic' "
                          "ORDER BY lastused DESC LIMIT 100")
        return [self._from_metadata(str(row[0]), row[1]) for row in rows]

    @staticmethod
    def _from_metadata(search_hash: str, metadata: dict[str, Any]) -> MosaicSpec:
        stored = metadata["geovigie:mosaic"]
        bbox = stored.get("bbox")
        return MosaicSpec(search_hash, stored["title"], stored["collection"], stored.get("product"),
                          tuple(bbox) if bbox else None)

    # one mosaic
    def get(self, mosaic_id: str) -> MosaicSpec:
        """The mosaic `mosaic_id` with its rendering defaults (reused for `SPEC_TTL` seconds)."""
        if not MOSAIC_ID.match(mosaic_id):
            raise MosaicNotFoundError(f"no mosaic {mosaic_id[:40]!r} (see /mosaics)")
        cached = self._specs.get(mosaic_id)
        if cached is not None and time.monotonic() - cached[0] < SPEC_TTL:
            return cached[1]
        spec = self._find(mosaic_id)
        spec = self._described(spec)
        self._specs[mosaic_id] = (time.monotonic(), spec)
        return spec

    def _find(self, mosaic_id: str) -> MosaicSpec:
        if SEARCH_HASH.match(mosaic_id):
            rows = self._rows("SELECT metadata FROM searches WHERE hash = %s AND metadata ? 'geovigie:mosaic'",
                              (mosaic_id,))
            if rows:
                return self._from_metadata(mosaic_id, rows[0][0])
        for spec in self.defaults():
            if spec.id == mosaic_id:
                return spec
        raise MosaicNotFoundError(f"no mosaic {mosaic_id[:40]!r} (see /mosaics)")

    def _newest(self, spec: MosaicSpec) -> dict[str, Any] | None:
        search = spec.search().model_dump(by_alias=True, exclude_none=True)
        search.update(limit=1, fields={"include": ["id", "assets", "properties"]})
        rows = self._rows("SELECT search(%s::jsonb)", (json.dumps(search),))
        features = (rows[0][0] or {}).get("features") or [] if rows else []
        return features[0] if features else None

    def _described(self, spec: MosaicSpec) -> MosaicSpec:
        """`spec` with the assets, render and legend of its newest item."""
        item = self._newest(spec)
        if item is None:
            return spec
        assets = item.get("assets") or {}
        props = item.get("properties") or {}
        data = [key for key, asset in assets.items() if "data" in (asset.get("roles") or [])]
        keys = ("data",) if "data" in assets else tuple(data) if len(data) == 1 else ()  # else: name them
        render = (props.get("renders") or {}).get("default") or {}
        rescale = tuple(render["rescale"][0]) if render.get("rescale") else None
        kind = props.get("geovigie:layer_kind")
        colormap: dict[int, tuple[int, int, int, int]] | None = None
        legend: list[dict[str, Any]] = []
        asset = assets.get(keys[0], {}) if keys else {}
        classes = [c for c in asset.get("classification:classes", []) if not c.get("nodata") and "color_hint" in c]
        if kind == "classes" and classes:
            colormap = {int(c["value"]): (*bytes.fromhex(c["color_hint"]), 255) for c in classes}
            legend = [{"value": c["value"], "name": c.get("description", c["name"]),
                       "color": f"#{c['color_hint'].lower()}"} for c in classes]
        colormap_name = render.get("colormap_name")
        unit = ((asset.get("raster:bands") or [{}])[0]).get("unit")
        if colormap_name and rescale:
            legend = [{"colors": ramp_colors(colormap_name), "min": rescale[0], "max": rescale[1], "unit": unit}]
        return replace(spec, assets=keys, kind=kind, rescale=rescale,
                       colormap_name=colormap_name, colormap=colormap, legend=legend, unit=unit)

    @staticmethod
    def _where(spec: MosaicSpec) -> tuple[str, list[Any]]:
        """SQL condition on pgstac's `items` selecting the mosaic's items, and its parameters."""
        where = ["collection = %s"]
        params: list[Any] = [spec.collection]
        if spec.product is not None:
            where.append("id LIKE %s")
            params.append(spec.product.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "-%")
        if spec.bbox is not None:
            where.append("ST_Intersects(geometry, ST_MakeEnvelope(%s, %s, %s, %s, 4326))")
            params += list(spec.bbox)
        return " AND ".join(where), params

    def passes(self, spec: MosaicSpec) -> list[str]:
        """The datetimes of the mosaic's items, newest first (at most `MAX_PASSES`)."""
        where, params = self._where(spec)
        rows = self._rows(f"SELECT DISTINCT datetime FROM items WHERE {where} "  # noqa: S608
                          f"ORDER BY datetime DESC LIMIT {MAX_PASSES}", tuple(params))
        return [row[0].astimezone(UTC).isoformat().replace("+00:00", "Z") for row in rows]

    def extent(self, spec: MosaicSpec) -> list[float] | None:
        """The bounds of the mosaic's items (within its bbox), None without items: TileJSON and WMTS clients
        then ask only for tiles where there is data."""
        where, params = self._where(spec)
        rows = self._rows(f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geometry) "
                          f"AS e FROM items WHERE {where}) AS extent", tuple(params))  # noqa: S608
        if not rows or rows[0][0] is None:
            return None
        bounds = [float(value) for value in rows[0]]
        if spec.bbox is not None:
            bounds = [max(bounds[0], spec.bbox[0]), max(bounds[1], spec.bbox[1]),
                      min(bounds[2], spec.bbox[2]), min(bounds[3], spec.bbox[3])]
        return bounds

    def register(self, spec: MosaicSpec, when: str | None = None, *, stored: bool = False) -> str:
        """The hash of the pgstac search of `spec` (items of `when` only), registering it once per process."""
        key = (spec.id, when, spec.bbox)
        with self._lock:
            found = self._registered.get(key)
            if found is not None:
                self._registered.move_to_end(key)
                return found
        metadata: dict[str, Any] = {"type": "mosaic", "name": spec.title}
        if stored:  # the mosaic's id: its search and what the user gave
            metadata["geovigie:mosaic"] = spec.stored()
            if spec.bbox is not None:
                metadata["bounds"] = list(spec.bbox)
        else:
            metadata["bounds"] = self.extent(spec) or spec.bbox
        rows = self._rows("SELECT hash FROM search_query(%s::jsonb, _metadata => %s::jsonb)",
                          (spec.search(when).model_dump_json(by_alias=True, exclude_none=True),
                           json.dumps(metadata)))
        search_hash = str(rows[0][0])
        with self._lock:
            self._registered[key] = search_hash
            while len(self._registered) > MAX_REGISTERED:
                self._registered.popitem(last=False)
            self.names[search_hash] = spec.id
        return search_hash


class MosaicRequest(BaseModel):
    """`POST /mosaics`: a collection (a product of the results collection), optionally over a territory's bbox."""

    collection: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$", description="STAC collection id")
    product: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$",
                                description="Results only: layer ids without their -YYYYMMDD date, e.g. ndvi-gers")
    bbox: list[float] | None = Field(None, min_length=4, max_length=4,
                                     description="The territory: west, south, east, north (EPSG:4326)")
    title: str | None = Field(None, max_length=120, pattern=NO_NUL)

    @field_validator("bbox")
    @classmethod
    def _on_the_globe(cls, value: list[float] | None) -> list[float] | None:
        if value is not None:
            west, south, east, north = value
            if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
                raise ValueError("bbox must be west, south, east, north on the globe with west < east, south < north")
        return value


@attrs.define
class MosaicFactory:
    """`/mosaics` (list, describe, register) and titiler-pgstac's endpoints under `/mosaics/{mosaic_id}`.

    Attributes:
        catalog: the mosaics and the database they are read from.
        access: API keys (registering a mosaic writes to the database: a write key).
        roots: folders whose files items' assets may be read from.
    """

    catalog: MosaicCatalog
    access: Access
    roots: tuple[Path, ...]
    router: APIRouter = attrs.field(factory=APIRouter)
    tiler: MosaicTilerFactory = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        roots = self.roots
        pool = self.catalog.pool
        self.tiler = MosaicTilerFactory(
            router_prefix="/mosaics/{mosaic_id}",
            path_dependency=self.search_id,
            backend_dependency=lambda: _Options({"pool": pool()}),  # type: ignore[arg-type]
            reader_dependency=lambda: _Options({"roots": roots}),  # type: ignore[arg-type]
            dataset_reader=MosaicReader,
            layer_dependency=self.mosaic_assets,  # type: ignore[arg-type]
            colormap_dependency=self.mosaic_colormap,
            render_dependency=self.mosaic_render,  # type: ignore[arg-type]
            environment_dependency=lambda: dict(GDAL_ENV),
            supported_tms=SUPPORTED_TMS,
            add_viewer=False,
            extensions=[wmtsExtension(tile_dependencies=[ColorMapParams, ImageRenderingParams],
                                      layer_identifier_provider=lambda search: self.catalog.names.get(
                                          search, "mosaic"))],
        )
        self.register_routes()
        for route in self.tiler.router.routes:
            if isinstance(route, APIRoute):
                route.responses = {**TILER_ERRORS, **route.responses}
        self.router.include_router(self.tiler.router, prefix="/mosaics/{mosaic_id}", tags=["mosaics"])

    # dependencies
    def search_id(self, mosaic_id: MosaicId, datetime: Annotated[str | None, Query(
            description="Only the passes of this instant, day (2024-08-13) or interval (start/end, '..' open); "
                        "default: every pass, the newest on top")] = None) -> str:
        """titiler-pgstac's path dependency: the registered search of the mosaic and datetime."""
        when = parse_datetime(datetime) if datetime is not None else None
        return self.catalog.register(self.catalog.get(mosaic_id), when)

    def mosaic_assets(
        self, mosaic_id: MosaicId,
        assets: Annotated[list[str] | None, Query(description="Asset names (default: the mosaic's data asset)")]
        = None,
        expression: Annotated[str | None, Query(description="rio-tiler band math expression")] = None,
        asset_as_band: Annotated[bool | None, Query(description="Consider each asset as a 1 band dataset")] = None,
    ) -> AssetsExprParams:
        """The assets asked for, else the mosaic's data asset (400 when it has none to offer)."""
        if not assets:
            default = self.catalog.get(mosaic_id).assets
            if not default:
                raise BadRequestError("assets: this mosaic's items have no single data asset: name the assets")
            assets = list(default)
        params = AssetsExprParams(assets=assets, expression=expression, asset_as_band=asset_as_band)
        params.assets = [{"name": name} for name in assets]  # type: ignore[misc]
        return params

    def mosaic_colormap(
        self, mosaic_id: MosaicId,
        colormap_name: Annotated[str | None, Query(description="Colormap name (default: the mosaic's)")] = None,
        colormap: Annotated[str | None, Query(description="JSON encoded custom colormap")] = None,
    ) -> ColorMapType | None:
        """The colormap asked for, else the mosaic's (its classes' colours or its ramp)."""
        if colormap_name is not None and colormap_name not in default_cmap.list():
            raise BadRequestError(f"unknown colormap_name {colormap_name[:40]!r} (see /colorMaps)")
        if colormap_name or colormap:
            return ColorMapParams(colormap_name=colormap_name, colormap=colormap)
        spec = self.catalog.get(mosaic_id)
        if spec.colormap is not None:
            return spec.colormap
        return default_cmap.get(spec.colormap_name) if spec.colormap_name else None

    def mosaic_render(self, mosaic_id: MosaicId,
                      params: Annotated[ImageRenderingParams, Depends(ImageRenderingParams)]) -> ImageRenderingParams:
        """Rendering parameters; the newest item's rescale range unless the request gives one."""
        if params.rescale is None:
            spec = self.catalog.get(mosaic_id)
            if spec.rescale is not None:
                params.rescale = [spec.rescale]  # type: ignore[list-item]
        return params

    # description
    def describe(self, request: Request, spec: MosaicSpec, *, passes: bool = True) -> dict[str, Any]:
        """A mosaic's JSON: what it shows, its passes (newest first) and absolute links (public base URL)."""
        base = str(request.base_url).rstrip("/")
        here = f"{base}/mosaics/{spec.id}"
        info: dict[str, Any] = {
            "id": spec.id, "title": spec.title, "collection": spec.collection, "product": spec.product,
            "bbox": list(spec.bbox) if spec.bbox else None, "kind": spec.kind, "assets": list(spec.assets),
            "legend": spec.legend, "unit": spec.unit,
            "tiles": [f"{here}/tiles/{DEFAULT_TMS}/{{z}}/{{x}}/{{y}}.png"],
            "tilejson": f"{here}/{DEFAULT_TMS}/tilejson.json?tilesize=256",
            "wmts": f"{here}/WMTSCapabilities.xml",
        }
        if passes:
            info["passes"] = self.catalog.passes(spec)
            info["bounds"] = self.catalog.extent(spec)
        return info

    def register_routes(self) -> None:
        """Add `/mosaics` (list, register) and `/mosaics/{mosaic_id}` (describe) to `self.router`."""
        writer = Depends(self.access.writer())

        @self.router.get("/mosaics", summary="List mosaics: one per raster collection and results product, and "
                         "those registered over a territory; each with its passes, newest first.", tags=["mosaics"])
        def list_mosaics(request: Request) -> list[dict[str, Any]]:
            specs = self.catalog.defaults() + self.catalog.registered()
            return [self.describe(request, self.catalog.get(spec.id)) for spec in specs]

        @self.router.post("/mosaics", status_code=201, tags=["mosaics"],
                          summary="Register a mosaic of a collection (or results product) over a territory's bbox "
                                  "(write key).",
                          responses={**WRITE_RESPONSES,
                                     404: {"model": ErrorBody, "description": "Unknown collection."}})
        def register_mosaic(request: Request, body: Annotated[MosaicRequest, Body()],
                            key: ApiKey = writer) -> dict[str, Any]:
            collections = {row[0] for row in self.catalog._rows("SELECT id FROM collections")}
            if body.collection not in collections:
                raise MosaicNotFoundError(f"no collection {body.collection!r} in the STAC API")
            if (body.product is None) != (body.collection != RESULTS_COLLECTION):
                raise BadRequestError(f"product: give one for {RESULTS_COLLECTION} (e.g. ndvi-gers), none otherwise")
            bbox = tuple(body.bbox) if body.bbox else None
            title = body.title or (body.product or body.collection) + (" (territory)" if bbox else "")
            draft = MosaicSpec("new", title, body.collection, body.product, bbox)  # type: ignore[arg-type]
            search_hash = self.catalog.register(draft, stored=True)
            return self.describe(request, self.catalog.get(search_hash))

        @self.router.get("/mosaics/{mosaic_id}", summary="Describe one mosaic (its passes, newest first).",
                         tags=["mosaics"], responses={404: {"model": ErrorBody, "description": "Unknown mosaic."}})
        def get_mosaic(request: Request, mosaic_id: MosaicId) -> dict[str, Any]:
            return self.describe(request, self.catalog.get(mosaic_id))


def _empty(request: Request, exc: Exception) -> JSONResponse:
    """No item of the mosaic (in the datetime asked) covers the tile: 404 saying so (TiTiler answers 204)."""
    when = request.query_params.get("datetime")
    where = f" at datetime {when[:60]!r}" if when else ""
    return JSONResponse({"detail": f"no item of mosaic {str(request.path_params.get('mosaic_id'))[:40]!r}{where} "
                                   "covers this area"}, status_code=404)


def mount(app: FastAPI, *, database: StacDatabase, access: Access, roots: tuple[Path, ...]) -> MosaicCatalog:
    """Add the mosaic endpoints to `app`; their connection pool closes with the app (before the database)."""
    catalog = MosaicCatalog(database)
    factory = MosaicFactory(catalog=catalog, access=access, roots=tuple(root.resolve() for root in roots))
    app.include_router(factory.router)
    for exc, status in PGSTAC_STATUS_CODES.items():
        app.add_exception_handler(exc, _status_handler(status))
    app.add_exception_handler(MosaicNotFoundError, _status_handler(404))
    app.add_exception_handler(NoAssetFoundError, _empty)
    app.add_exception_handler(EmptyMosaicError, _empty)
    previous = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(parent: FastAPI) -> AsyncIterator[Any]:
        async with previous(parent) as state:
            try:
                yield state
            finally:
                catalog.close()

    app.router.lifespan_context = lifespan
    return catalog


def _status_handler(status: int) -> Callable[[Request, Exception], JSONResponse]:
    def handle(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)[:300]}, status_code=status)
    return handle
