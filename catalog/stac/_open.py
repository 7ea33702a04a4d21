"""`open_store`: the one place that decides what a location is, hence which store serves it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, overload

from geovigie.catalog.stac._pgstac import MirroredItemStore, PgstacItemStore
from geovigie.catalog.stac._store import ApiItemSource, StaticItemStore
from geovigie.errors import InputNotFoundError
from geovigie.postgres import StacDatabase

DEFAULT_FILES_ROOT = Path("geovigie-data") / "results"
"""Where a store opened by a `postgresql://` URL keeps the asset files of new items, unless told."""

LocalStore = StaticItemStore | MirroredItemStore
"""What a folder holds: a static catalog, or the export of a pgstac database."""
AnyStore = LocalStore | PgstacItemStore | ApiItemSource


@overload
def open_store(location: Path, *, database: StacDatabase | None = None, missing_ok: bool = False,
               catalog_id: str = "geovigie", description: str = "geovigie items") -> LocalStore:
    ...


@overload
def open_store(location: str | Path, *, database: StacDatabase | None = None, missing_ok: bool = False,
               catalog_id: str = "geovigie", description: str = "geovigie items",
               files_root: str | Path | None = None, modifier: Callable[[Any], Any] | None = None,
               timeout: float | None = None) -> AnyStore:
    ...


def open_store(location: str | Path, *, database: StacDatabase | None = None, missing_ok: bool = False,
               catalog_id: str = "geovigie", description: str = "geovigie items",
               files_root: str | Path | None = None, modifier: Callable[[Any], Any] | None = None,
               timeout: float | None = None) -> AnyStore:
    """The store at `location`, whatever it is:

    - an `http://` or `https://` URL: a STAC API, read only (`ApiItemSource`; `modifier` signs its requests and
      items, `timeout` in seconds unless the settings configure `http_timeout`);
    - a `postgresql://` URL: a pgstac database (`PgstacItemStore`; asset files of new items under `files_root`,
      by default `geovigie-data/results`);
    - a folder (or its catalog.json) and the `database` its items live in: pgstac, exported to that folder
      (`MirroredItemStore`; the database starts on first use);
    - a folder (or its catalog.json): a static catalog (`StaticItemStore`), which must hold a catalog.json unless
      `missing_ok` (then it is written on the first upsert, named `catalog_id`, described by `description`).

    A `Path` is always a folder; only a `str` names a URL.

    Raises:
        InputNotFoundError: no catalog.json in the folder (and neither `missing_ok` nor a `database`).
    """
    if isinstance(location, str):
        if location.startswith(("http://", "https://")):
            return ApiItemSource(location, modifier=modifier, timeout=timeout)
        if location.startswith(("postgresql://", "postgres://")):
            return PgstacItemStore(location, files_root or DEFAULT_FILES_ROOT)
    path = Path(location)
    folder = path.parent if path.name == "catalog.json" else path
    if database is None and not missing_ok and not (folder / "catalog.json").is_file():
        raise InputNotFoundError(
            f"no STAC catalog at {folder}: run `geovigie catalog build` or point to a catalog.json / STAC API URL"
        )
    static = StaticItemStore(folder, catalog_id=catalog_id, description=description)
    return static if database is None else MirroredItemStore(database, static)
