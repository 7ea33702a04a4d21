"""The published layers, read from the results store (pgstac or the static catalog) and addressed by id only."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from geovigie.catalog import ItemStore, SearchQuery, StaticItemStore
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

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description (no file path: clients address layers by id)."""
        return {
            "id": self.id, "title": self.title, "kind": self.kind, "bounds": list(self.bounds),
            "legend": self.legend, "rescale": list(self.rescale) if self.rescale else None,
            "colormap_name": self.colormap_name, "unit": self.unit, "datetime": self.datetime,
            "style": self.style, "description": self.description,
        }


def _layer_from_item(item: dict[str, Any], folder: Path) -> Layer:
    props = item["properties"]
    asset = item["assets"]["data"]
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
    )


def _local_file(href: str, folder: Path) -> Path:
    """A data file's path: relative to the item's folder, or a `file://` URI (other URLs are refused)."""
    if href.startswith("file://"):
        from urllib.parse import urlsplit
        from urllib.request import url2pathname

        return Path(url2pathname(urlsplit(href).path)).resolve()
    if "://" in href:
        raise ValueError(f"its data is not a local file ({href.split('://')[0]}://...)")
    return (folder / href).resolve()


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
        return sorted(item.id for item in self._search())

    def _search(self) -> list[Any]:
        if RESULTS_COLLECTION not in self.store.collection_ids():
            return []
        return list(self.store.search(SearchQuery(collections=(RESULTS_COLLECTION,), max_items=None, limit=500)))

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

    def _checked(self, layer_id: str, layer: Layer) -> Layer:
        if not layer.path.is_relative_to(self.results_dir):
            raise LayerNotFoundError(f"layer {layer_id!r} points outside the data directory")
        if not layer.path.is_file():
            raise LayerNotFoundError(f"layer {layer_id!r} is broken: its data file is missing")
        return layer

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
        return self._remember(item)

    def _remember(self, item: Any) -> Layer:
        try:
            layer = _layer_from_item(item.to_dict(include_self_link=False, transform_hrefs=False),
                                     self._folder(item))
        except (ValueError, KeyError, TypeError, IndexError) as err:
            raise LayerNotFoundError(f"layer {item.id!r} is broken: its item cannot be read ({err})") from err
        with self._lock:
            self._cache[item.id] = (time.monotonic() + self.ttl, layer)
        return layer

    def _folder(self, item: Any) -> Path:
        self_href = item.get_self_href()
        if self_href and "://" not in self_href:
            return Path(self_href).parent
        return Path(self.store.files_dir(RESULTS_COLLECTION, item.id))

    def forget(self) -> None:
        """Drop the layers kept from a database store (the next lookups read it again)."""
        with self._lock:
            self._cache.clear()

    def scan(self) -> tuple[list[Layer], dict[str, str]]:
        """Every readable layer, and the broken ones with the reason (logged once per scan)."""
        layers, broken = [], {}
        if self._static:
            candidates: list[tuple[str, Any]] = [(layer_id, None) for layer_id in self.ids()]
        else:  # one search reads them all (and refreshes what tile requests reuse)
            candidates = sorted(((item.id, item) for item in self._search()), key=lambda pair: pair[0])
        for layer_id, item in candidates:
            try:
                layers.append(self.get(layer_id) if item is None else self._checked(layer_id, self._remember(item)))
            except LayerNotFoundError as err:
                broken[layer_id] = str(err)
                log.warning("skipping %s", err)
        return layers, broken

    def all(self) -> list[Layer]:
        """Every readable layer (broken ones skipped)."""
        return self.scan()[0]
