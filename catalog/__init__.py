"""STAC catalogs: build the local one, search it or any STAC API, store items, load them lazily."""

from geovigie.catalog._build import (
    GERS,
    MUENSTER,
    SAMPLE_COLLECTIONS,
    SLOVENIA,
    SLOVENIA_CLOUDY,
    SLOVENIA_LABELS,
    SLOVENIA_NODATA,
    build_sample_catalog,
)
from geovigie.catalog._load import load_items
from geovigie.catalog._query import SearchQuery
from geovigie.catalog._search import CatalogClient, ItemSearch, read_item
from geovigie.catalog._store import ApiItemSource, ItemSource, ItemStore, StaticItemStore, check_id, open_store

__all__ = [
    "GERS",
    "MUENSTER",
    "SAMPLE_COLLECTIONS",
    "SLOVENIA",
    "SLOVENIA_CLOUDY",
    "SLOVENIA_LABELS",
    "SLOVENIA_NODATA",
    "ApiItemSource",
    "CatalogClient",
    "ItemSearch",
    "ItemSource",
    "ItemStore",
    "SearchQuery",
    "StaticItemStore",
    "build_sample_catalog",
    "check_id",
    "load_items",
    "open_store",
    "read_item",
]
