"""The published layers, read from the results catalog and addressed by id only."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from geovigie.catalog import StaticItemStore
from geovigie.errors import LayerNotFoundError
from geovigie.tiles._publish import RESULTS_COLLECTION, results_store

LAYER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
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
        path=(folder / asset["href"]).resolve(), bounds=tuple(item["bbox"]), legend=legend,
        rescale=rescale, colormap_name=render.get("colormap_name"), unit=bands[0].get("unit"),
        datetime=props.get("datetime") or props.get("start_datetime"), style=props.get("geovigie:style"),
        description=props.get("description", ""),
    )


@lru_cache(maxsize=256)
def _read_layer(item_path: str, mtime_ns: int) -> Layer:
    """Parse a layer's item once per version of the file (tile requests hit this on every call)."""
    path = Path(item_path)
    return _layer_from_item(json.loads(path.read_text(encoding="utf-8")), path.parent)


class LayerIndex:
    """Look layers up in the results store; never opens a path that a request could choose.

    A layer whose item is unreadable or whose file is missing is skipped by `layers()` and reported by `broken()`;
    the others keep working.
    """

    def __init__(self, store: StaticItemStore | str | Path) -> None:
        self.store = store if isinstance(store, StaticItemStore) else results_store(store)
        self.results_dir = self.store.root

    def ids(self) -> list[str]:
        """Ids of all published layers (broken ones included), sorted."""
        if RESULTS_COLLECTION not in self.store.collection_ids():
            return []
        return [path.parent.name for path in self.store.item_paths((RESULTS_COLLECTION,))]

    def item_href(self, layer_id: str) -> str:
        """The layer item's path relative to the results catalog root."""
        return self.store.relative_href(RESULTS_COLLECTION, layer_id)

    def get(self, layer_id: str) -> Layer:
        """The layer `layer_id`.

        Raises:
            LayerNotFoundError: unknown id, an id that is not a plain name, or a layer whose item or file is broken.
        """
        if not LAYER_ID.match(layer_id):
            shown = layer_id if len(layer_id) <= 40 else layer_id[:40] + "…"
            raise LayerNotFoundError(f"invalid layer id {shown!r}")
        item_path = self.store.item_path(RESULTS_COLLECTION, layer_id)
        if not item_path.is_file():
            raise LayerNotFoundError(f"unknown layer {layer_id!r}")
        try:
            layer = _read_layer(str(item_path), item_path.stat().st_mtime_ns)
        except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
            raise LayerNotFoundError(f"layer {layer_id!r} is broken: its item cannot be read ({err})") from err
        if not layer.path.is_relative_to(self.results_dir):
            raise LayerNotFoundError(f"layer {layer_id!r} points outside the data directory")
        if not layer.path.is_file():
            raise LayerNotFoundError(f"layer {layer_id!r} is broken: its data file is missing")
        return layer

    def scan(self) -> tuple[list[Layer], dict[str, str]]:
        """Every readable layer, and the broken ones with the reason (logged once per scan)."""
        layers, broken = [], {}
        for layer_id in self.ids():
            try:
                layers.append(self.get(layer_id))
            except LayerNotFoundError as err:
                broken[layer_id] = str(err)
                log.warning("skipping %s", err)
        return layers, broken

    def all(self) -> list[Layer]:
        """Every readable layer (broken ones skipped)."""
        return self.scan()[0]
