"""The published layers, read from the results catalog and addressed by id only."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from geovigie.errors import LayerNotFoundError
from geovigie.tiles._publish import RESULTS_COLLECTION

LAYER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


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

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description (no file path: clients address layers by id)."""
        return {
            "id": self.id, "title": self.title, "kind": self.kind, "bounds": list(self.bounds),
            "legend": self.legend, "rescale": list(self.rescale) if self.rescale else None,
            "colormap_name": self.colormap_name, "unit": self.unit, "datetime": self.datetime,
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
        path=(folder / asset["href"]).resolve(), bounds=tuple(item["bbox"]), legend=legend,  # type: ignore[arg-type]
        rescale=rescale, colormap_name=render.get("colormap_name"), unit=bands[0].get("unit"),
        datetime=props.get("datetime") or props.get("start_datetime"),
    )


@lru_cache(maxsize=256)
def _read_layer(item_path: str, mtime_ns: int) -> Layer:
    """Parse a layer's item once per version of the file (tile requests hit this on every call)."""
    path = Path(item_path)
    return _layer_from_item(json.loads(path.read_text(encoding="utf-8")), path.parent)


class LayerIndex:
    """Look layers up in `results_dir`; never opens a path that a request could choose."""

    def __init__(self, results_dir: str | Path) -> None:
        self.results_dir = Path(results_dir).resolve()
        self.collection_dir = self.results_dir / RESULTS_COLLECTION

    def ids(self) -> list[str]:
        """Ids of all published layers, sorted."""
        if not self.collection_dir.is_dir():
            return []
        return sorted(p.name for p in self.collection_dir.iterdir() if (p / f"{p.name}.json").is_file())

    def get(self, layer_id: str) -> Layer:
        """The layer `layer_id`.

        Raises:
            LayerNotFoundError: unknown id, or an id that is not a plain name.
        """
        if not LAYER_ID.match(layer_id):
            raise LayerNotFoundError(f"invalid layer id {layer_id!r}")
        folder = self.collection_dir / layer_id
        item_path = folder / f"{layer_id}.json"
        if not item_path.is_file():
            raise LayerNotFoundError(f"unknown layer {layer_id!r}; known: {', '.join(self.ids()) or 'none'}")
        layer = _read_layer(str(item_path), item_path.stat().st_mtime_ns)
        if not layer.path.is_relative_to(self.results_dir):
            raise LayerNotFoundError(f"layer {layer_id!r} points outside the data directory")
        return layer

    def all(self) -> list[Layer]:
        """Every published layer."""
        return [self.get(i) for i in self.ids()]
