"""What a workflow hands back: the published layer and a one-line figure for people."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
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


@contextlib.contextmanager
def removed_on_failure(settings: Settings, *layer_ids: str) -> Iterator[None]:
    """Remove the folders of `layer_ids` that this run created when it fails: no half layer left under results/.

    Folders of layers that existed before the run are left alone (they hold a published layer); the store's own
    folders that the run created are removed too when they are left empty.
    """
    store = results_store_for(settings)
    folders = [store.files_dir(RESULTS_COLLECTION, layer_id) for layer_id in layer_ids]
    fresh = [folder for folder in folders if not folder.exists()]
    parents = {folder: [p for p in folder.parents if not p.exists()] for folder in fresh}
    try:
        yield
    except BaseException:
        for folder in fresh:
            shutil.rmtree(folder, ignore_errors=True)
            for parent in parents[folder]:  # innermost first; a folder someone else filled meanwhile stays
                with contextlib.suppress(OSError):
                    parent.rmdir()
        raise
