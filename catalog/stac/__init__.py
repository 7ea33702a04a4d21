"""STAC access: queries (CQL2, the cloud rule), item stores (static catalog, pgstac, a STAC API) and the search client.

`open_store` is the one place that decides what a location is (a STAC API URL, a PostgreSQL URL, a catalog folder,
with or without the database it is exported from); `CatalogClient` searches any of them alike.
"""

from geovigie.catalog.stac._open import open_store
from geovigie.catalog.stac._pgstac import MirroredItemStore, PgstacItemStore, export_static
from geovigie.catalog.stac._query import DEFAULT_MAX_CLOUD, SearchQuery, cloud_filter, cloud_skip_reason, cql2_filter
from geovigie.catalog.stac._raster_item import is_raster_file, raster_item
from geovigie.catalog.stac._search import CatalogClient, ItemSearch, read_item
from geovigie.catalog.stac._store import ApiItemSource, ItemSource, ItemStore, StaticItemStore, check_id

__all__ = [
    "DEFAULT_MAX_CLOUD",
    "ApiItemSource",
    "CatalogClient",
    "ItemSearch",
    "ItemSource",
    "ItemStore",
    "MirroredItemStore",
    "PgstacItemStore",
    "SearchQuery",
    "StaticItemStore",
    "check_id",
    "cloud_filter",
    "cloud_skip_reason",
    "cql2_filter",
    "export_static",
    "is_raster_file",
    "open_store",
    "raster_item",
    "read_item",
]
