"""What a workflow hands back: the published layer and a one-line figure for people."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pystac

from geovigie.paths import safe_join
from geovigie.settings import Settings
from geovigie.tiles import RESULTS_COLLECTION, results_store_for


@dataclass(frozen=True)
class PublishedLayer:
    """A layer now in the results store."""

    id: str
    kind: str
    item: pystac.Item
    detail: str
    seconds: float = 0.0

    @property
    def item_path(self) -> Path:
        """The layer's STAC item file (in the static catalog, the export when the store is pgstac)."""
        return Path(self.item.get_self_href() or "")


def layer_target(settings: Settings, layer_id: str, name: str = "data.tif") -> Path:
    """Where a producer writes a layer's file before publishing (the layer's own folder: the copy is skipped)."""
    return safe_join(results_store_for(settings).files_dir(RESULTS_COLLECTION, layer_id), name, what="file name")
