"""The published layers, read from the results store (pgstac or the static catalog) and addressed by id only."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from stat import S_ISREG
from typing import Any

from geovigie.catalog.stac import ItemStore, SearchQuery, StaticItemStore
from geovigie.errors import InputNotFoundError, LayerNotFoundError, UnknownCollectionError
from geovigie.paths import is_safe_name, shown
from geovigie.tiles._backend import results_store
from geovigie.tiles._publish import RESULTS_COLLECTION

LAYER_TTL = 3.0
"""Seconds a layer read from a database store is reused: tiles ask for their layer on every request."""
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Layer:
    """A layer: its id, file, bounds (EPSG:4326) and how to draw it."""

    id: str
    title: str
    kind: str
    path: Path
    bounds: tuple[float, float, float, float]
    legend: list[dict[str, Any]]
    rescale: tuple[float, float] | None
    colormap_name: str | None
    unit: str | None
    datetime: str | None
    style: dict[str, Any] | None = None
    """Vector layers only: how to draw features (see `tiles.VectorStyle`)."""
    description: str = ""
    assets: tuple[tuple[str, Path], ...] = ()
    """The item's local asset files by key (`data` is `path`), served over http by the service."""
    version: str = ""
    """Changes whenever the layer's data file is replaced (republished): the key of cached tiles."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description (no file path: clients address layers by id)."""
        return {
            "id": self.id, "title": self.title, "kind": self.kind, "bounds": list(self.bounds),
            "legend": self.legend, "rescale": list(self.rescale) if self.rescale else None,
            "colormap_name": self.colormap_name, "unit": self.unit, "datetime": self.datetime,
            "style": self.style, "description": self.description,
        }


def _layer_from_item(item: dict[str, Any], folder: Path) -> Layer:
    props, assets = item["properties"], item["assets"]
    if not isinstance(props, dict) or not isinstance(assets, dict) or not isinstance(assets.get("data"), dict):
        raise TypeError("its properties and assets are not JSON objects")
    asset = assets["data"]
    render = props.get("renders", {}).get("default", {})
    rescale = tuple(render["rescale"][0]) if render.get("rescale") else None
    bands = asset.get("raster:bands") or [{}]
    legend: list[dict[str, Any]] = [
        {"value": c["value"], "name": c.get("description", c["name"]), "color": f"#{c['color_hint'].lower()}"}
        for c in asset.get("classification:classes", []) if not c.get("nodata") and "color_hint" in c
    ]
    return Layer(
        id=item["id"], title=props.get("title", item["id"]), kind=props.get("geovigie:layer_kind", "continuous"),
        path=_local_file(asset["href"], folder), bounds=tuple(item["bbox"]), legend=legend,
        rescale=rescale, colormap_name=render.get("colormap_name"), unit=bands[0].get("unit"),
        datetime=props.get("datetime") or props.get("start_datetime"), style=props.get("geovigie:style"),
        description=props.get("description", ""),
        assets=tuple((key, _local_file(value["href"], folder)) for key, value in assets.items()
                     if isinstance(value, dict) and isinstance(value.get("href"), str)
                     and ("://" not in value["href"] or value["href"].startswith("file://"))),
    )


@lru_cache(maxsize=1024)
def _cog_problem(path: str, mtime_ns: int, size: int) -> str | None:
    """Why the GeoTIFF at `path` cannot be served whole (None when it can): a file cut short (its last block of
    full-resolution data ends past the end of the file) or one GDAL cannot open. Checked once per file version."""
    import rasterio
    from rasterio.errors import RasterioError

    try:
        with rasterio.open(path) as src:
            rows, cols = (-(-src.height // src.block_shapes[0][0]), -(-src.width // src.block_shapes[0][1]))
            ends = []
            for row, col in ((rows - 1, cols - 1), (0, 0)):
                offset = src.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=1)
                length = src.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=1)
                if offset is None or length is None:  # GDAL gives none for a block past the end of the file
                    return "its data file is truncated (a block of data is missing)"
                ends.append(int(offset) + int(length))
    except (RasterioError, OSError, ValueError) as err:
        return f"its data file cannot be read ({str(err)[:120]})"
    if ends and max(ends) > size:
        return f"its data file is truncated ({size} bytes, data up to byte {max(ends)})"
    return None


def _local_file(href: str, folder: Path) -> Path:
    """A data file's path: relative to the item's folder, or a `file://` URI (other URLs are refused)."""
    if href.startswith("file://"):
        from urllib.parse import urlsplit
        from urllib.request import url2pathname

        return Path(url2pathname(urlsplit(href).path)).resolve()
    if "://" in href:
        raise ValueError(f"its data is not a local file ({href.split('://')[0]}://...)")
    return (folder / href).resolve()


def _signature(item_path: Path, data_path: Path) -> tuple[str, str] | None:
    """`mtime-size` of a layer's item and data files (the data's is `Layer.version`); None when either is not a
    regular file."""
    try:
        found = item_path.stat(), data_path.stat()
    except OSError:
        return None
    if not all(S_ISREG(entry.st_mode) for entry in found):
        return None
    return tuple(f"{entry.st_mtime_ns:x}-{entry.st_size:x}" for entry in found)  # type: ignore[return-value]


@lru_cache(maxsize=256)
def _read_layer(item_path: str, mtime_ns: int) -> Layer:
    """Parse a layer's item once per version of the file (tile requests hit this on every call)."""
    path = Path(item_path)
    return _layer_from_item(json.loads(path.read_text(encoding="utf-8")), path.parent)


class LayerIndex:
    """Look layers up in the results store; never opens a path that a request could choose.

    Any `ItemStore` works: ids come from a search of the results collection, layers from `get`. The static catalog
    is read file by file (an item is parsed once per version of its file); layers from other stores (pgstac) are
    reused for `LAYER_TTL` seconds, since every tile request looks its layer up. A layer whose item is unreadable or
    whose file is missing is skipped by `layers()` and reported by `broken()`; the others keep working.
    """

    def __init__(self, store: ItemStore | str | Path, *, ttl: float = LAYER_TTL) -> None:
        opened: Any = store if isinstance(store, ItemStore) else results_store(store)
        self.store = opened
        self.results_dir: Path = Path(opened.root)
        self.ttl = ttl
        self._cache: dict[str, tuple[float, Layer]] = {}
        self._failures: dict[tuple[str, str], str] = {}
        self._memo: dict[str, tuple[float, Path, tuple[str, str], Layer]] = {}
        self._lock = threading.Lock()

    @property
    def _static(self) -> bool:
        return isinstance(self.store, StaticItemStore)

    def ids(self) -> list[str]:
        """Ids of all published layers (broken ones included), sorted."""
        if self._static:
            if RESULTS_COLLECTION not in self.store.collection_ids():
                return []
            return [path.parent.name for path in self.store.item_paths((RESULTS_COLLECTION,))]
        return sorted(str(item.get("id")) for item in self._search())

    def _search(self) -> list[dict[str, Any]]:
        """The results collection's items as JSON (unparsed where the store allows: one bad row is one broken layer)."""
        if RESULTS_COLLECTION not in self.store.collection_ids():
            return []
        query = SearchQuery(collections=(RESULTS_COLLECTION,), max_items=None, limit=500)
        if hasattr(self.store, "features"):
            return list(self.store.features(query))
        return [item.to_dict(include_self_link=False, transform_hrefs=False) for item in self.store.search(query)]

    def item_href(self, layer_id: str) -> str:
        """The layer item's path relative to the results catalog root (the static export with pgstac)."""
        return str(self.store.relative_href(RESULTS_COLLECTION, layer_id))

    def get(self, layer_id: str) -> Layer:
        """The layer `layer_id`.

        Raises:
            LayerNotFoundError: unknown id, an id that is not a plain name, or a layer whose item or file is broken.
        """
        if not is_safe_name(layer_id):
            raise LayerNotFoundError(f"invalid layer id {shown(layer_id)}")
        return self._checked(layer_id, self._static_layer(layer_id) if self._static else self._stored_layer(layer_id))

    def peek(self, layer_id: str) -> Layer | None:
        """`get` when it needs no database query (static store, or a layer read from the database less than
        `ttl` seconds ago): local file checks only, so an event loop may call it; None otherwise.

        Raises:
            LayerNotFoundError: as `get`.
        """
        if self._static:
            return self._static_peek(layer_id)
        with self._lock:
            cached = self._cache.get(layer_id)
        if cached is None or cached[0] <= time.monotonic():
            return None
        return self._checked(layer_id, cached[1])

    def _static_peek(self, layer_id: str) -> Layer:
        """`get` on the static store, the checked layer remembered with the (mtime, size) of its item and data
        files: a tile request then costs two `stat` calls rather than the path resolution and checks (about
        0.1 ms); a replaced file (republished) is read again at once, and everything is checked again every
        `ttl` seconds."""
        with self._lock:
            memo = self._memo.get(layer_id)
        if memo is not None and memo[0] > time.monotonic():
            _, item_path, signature, layer = memo
            if _signature(item_path, layer.path) == signature:
                with self._lock:
                    problem = self._failures.get((layer_id, layer.version))
                if problem is None:
                    return layer
        layer = self.get(layer_id)
        item_path = self.store.item_path(RESULTS_COLLECTION, layer_id)
        current = _signature(item_path, layer.path)
        if current is not None and layer.version == current[1]:
            with self._lock:
                self._memo[layer_id] = (time.monotonic() + self.ttl, item_path, current, layer)
        return layer

    def _checked(self, layer_id: str, layer: Layer) -> Layer:
        if not layer.path.is_relative_to(self.results_dir):
            raise LayerNotFoundError(f"layer {layer_id!r} points outside the data directory")
        try:
            stat = layer.path.stat()
        except OSError:
            stat = None
        if stat is None or not layer.path.is_file():
            raise LayerNotFoundError(f"layer {layer_id!r} is broken: its data file is missing")
        version = f"{stat.st_mtime_ns:x}-{stat.st_size:x}"
        if layer.kind != "vector":
            problem = _cog_problem(str(layer.path), stat.st_mtime_ns, stat.st_size)
            if problem is None:
                with self._lock:
                    problem = self._failures.get((layer_id, version))
            if problem is not None:
                raise LayerNotFoundError(f"layer {layer_id!r} is broken: {problem}")
        return dataclasses.replace(layer, version=version)

    def report_broken(self, layer_id: str, reason: str) -> None:
        """Record that reading layer `layer_id` (its current version) failed: it is listed as broken until its
        file is replaced (republished)."""
        try:
            layer = self.get(layer_id)
        except LayerNotFoundError:
            return  # unknown, or already known to be broken
        log.error("layer %s is broken: %s", layer.id, reason)
        with self._lock:
            self._failures[(layer.id, layer.version)] = reason

    def asset_path(self, layer_id: str, key: str) -> Path:
        """The local file of asset `key` of layer `layer_id` (inside the data directory).

        Raises:
            LayerNotFoundError: unknown or broken layer, unknown asset, or a file missing or outside the data folder.
        """
        layer = self.get(layer_id)
        path = dict(layer.assets).get(key)
        if path is None or not path.is_relative_to(self.results_dir) or not path.is_file():
            shown = key if len(key) <= 40 else key[:40] + "…"
            raise LayerNotFoundError(f"layer {layer_id!r} has no asset {shown!r}")
        return path

    def _static_layer(self, layer_id: str) -> Layer:
        item_path = self.store.item_path(RESULTS_COLLECTION, layer_id)
        if not item_path.is_file():
            raise LayerNotFoundError(f"unknown layer {layer_id!r}")
        try:
            return _read_layer(str(item_path), item_path.stat().st_mtime_ns)
        except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
            raise LayerNotFoundError(f"layer {layer_id!r} is broken: its item cannot be read ({err})") from err

    def _stored_layer(self, layer_id: str) -> Layer:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(layer_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            item = self.store.get(RESULTS_COLLECTION, layer_id)
        except (InputNotFoundError, UnknownCollectionError) as err:
            raise LayerNotFoundError(f"unknown layer {layer_id!r}") from err
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
            raise LayerNotFoundError(f"layer {layer_id!r} is broken: its item cannot be read ({err})") from err
        return self._remember(layer_id, item.to_dict(include_self_link=False, transform_hrefs=False),
                              self._folder(layer_id, item.get_self_href()))

    def _remember(self, layer_id: str, item: dict[str, Any], folder: Path) -> Layer:
        try:
            layer = _layer_from_item(item, folder)
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
            raise LayerNotFoundError(f"layer {layer_id!r} is broken: its item cannot be read "
                                     f"({str(err)[:200]})") from err
        with self._lock:
            self._cache[layer_id] = (time.monotonic() + self.ttl, layer)
        return layer

    def _folder(self, layer_id: str, self_href: str | None) -> Path:
        if self_href and "://" not in self_href:
            return Path(self_href).parent
        return Path(self.store.files_dir(RESULTS_COLLECTION, layer_id))

    def scan(self) -> tuple[list[Layer], dict[str, str]]:
        """Every readable layer, and the broken ones with the reason (logged once per scan)."""
        layers, broken = [], {}
        if self._static:
            candidates: list[tuple[str, Any]] = [(layer_id, None) for layer_id in self.ids()]
        else:  # one search reads them all (and refreshes what tile requests reuse)
            candidates = sorted(((str(item.get("id")), item) for item in self._search()), key=lambda pair: pair[0])
        for layer_id, item in candidates:
            try:
                if item is None:
                    layers.append(self.get(layer_id))
                elif not is_safe_name(layer_id):
                    raise LayerNotFoundError(f"invalid layer id {shown(layer_id)}")
                else:
                    layers.append(self._checked(layer_id, self._remember(layer_id, item,
                                                                          self._folder(layer_id, None))))
            except LayerNotFoundError as err:
                broken[layer_id] = str(err)
                log.warning("skipping %s", err)
        return layers, broken

    def all(self) -> list[Layer]:
        """Every readable layer (broken ones skipped)."""
        return self.scan()[0]
