"""Which store published layers go to: pgstac (the STAC API, with the static catalog as its export) or the static
catalog alone. `results_store_for(settings)` is the one place every publisher and reader gets it from."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Literal

from geovigie.catalog.stac import MirroredItemStore, PgstacItemStore, StaticItemStore, open_store
from geovigie.postgres import PostgresNotInstalledError, StacDatabase, find_bin_dir, stac_database
from geovigie.settings import Settings

log = logging.getLogger(__name__)

STATIC_NOTICE = (
    "no STAC API: PostgreSQL is not installed ({reason}), so layers go to the static catalog {where} only. "
    "For the STAC API, install PostgreSQL and PostGIS (`apt-get install postgresql postgis` as root) or set "
    "GEOVIGIE_DATABASE_URL to a PostgreSQL server with PostGIS; set GEOVIGIE_STAC_BACKEND=static to silence this."
)
_noticed: set[Path] = set()
_noticed_lock = threading.Lock()


RESULTS_CATALOG = ("geovigie-results", "Layers published by geovigie")
INPUTS_CATALOG = ("geovigie-inputs", "Imagery available to geovigie")
"""The id and description of the static catalogs of published layers and of input imagery."""


def results_store(results_dir: str | Path) -> StaticItemStore:
    """The static catalog of published layers under `results_dir`."""
    return StaticItemStore(results_dir, catalog_id=RESULTS_CATALOG[0], description=RESULTS_CATALOG[1])


def stac_backend(settings: Settings) -> Literal["pgstac", "static"]:
    """The backend `settings` resolve to.

    `auto` is pgstac when a database URL is set or the PostgreSQL server programs are found (the private cluster
    under DATA_DIR/postgres), else static, with one notice per process saying how to get the STAC API.
    """
    if settings.stac_backend != "auto":
        return settings.stac_backend
    if settings.database_url:
        return "pgstac"
    try:
        find_bin_dir(settings.postgres_bin_dir)
    except PostgresNotInstalledError as err:
        with _noticed_lock:  # once per process and results folder
            first = settings.results_dir.absolute() not in _noticed
            _noticed.add(settings.results_dir.absolute())
        if first:
            log.warning(STATIC_NOTICE.format(reason=str(err).split(":")[0], where=settings.results_dir))
        return "static"
    return "pgstac"


def results_database(settings: Settings) -> StacDatabase | None:
    """The STAC API's database for `settings` (shared in the process), None with the static backend."""
    if stac_backend(settings) != "pgstac":
        return None
    return stac_database(settings.database_url, settings.data_dir, bin_dir=settings.postgres_bin_dir)


def results_store_for(settings: Settings) -> MirroredItemStore | StaticItemStore:
    """THE store of published layers: pgstac exported to `settings.results_dir`, or the static catalog there."""
    return open_store(settings.results_dir, database=results_database(settings), missing_ok=True,
                      catalog_id=RESULTS_CATALOG[0], description=RESULTS_CATALOG[1])


def stop_results_database(settings: Settings) -> None:
    """Stop the private PostgreSQL of `settings` if this process started it (a no-op otherwise)."""
    database = results_database(settings)
    if database is not None:
        database.stop()


def inputs_store(catalog_dir: str | Path) -> StaticItemStore:
    """The static catalog of input imagery under `catalog_dir`."""
    return StaticItemStore(catalog_dir, catalog_id=INPUTS_CATALOG[0], description=INPUTS_CATALOG[1])


def inputs_store_for(settings: Settings) -> MirroredItemStore | StaticItemStore:
    """THE store of ingested imagery (orthophotos, fetched areas): pgstac exported to `settings.catalog_dir`, or the
    static catalog there, on the same backend as the published layers."""
    return open_store(settings.catalog_dir, database=results_database(settings), missing_ok=True,
                      catalog_id=INPUTS_CATALOG[0], description=INPUTS_CATALOG[1])


def index_inputs(settings: Settings) -> int:
    """Put every item of the static input catalog (e.g. the freshly built sample catalog) into the STAC API.

    Returns the number of items written (0 with the static backend, where the catalog folder is the store).
    """
    database = results_database(settings)
    root = settings.catalog_dir / "catalog.json"
    if database is None or not root.is_file():
        return 0
    import pystac

    written = 0
    catalog = pystac.Catalog.from_file(str(root))
    with PgstacItemStore(database.url(), settings.catalog_dir) as store:
        for collection in catalog.get_children():
            if isinstance(collection, pystac.Collection):
                written += store.upsert_many(list(collection.get_items()), collection)
    return written
