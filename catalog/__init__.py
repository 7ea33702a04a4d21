"""STAC catalogs: build the local one, search it or any STAC API, load items lazily."""

from geovigie.catalog._build import SAMPLE_COLLECTIONS, build_sample_catalog
from geovigie.catalog._load import load_items
from geovigie.catalog._search import CatalogClient, ItemSearch, read_item

__all__ = ["SAMPLE_COLLECTIONS", "CatalogClient", "ItemSearch", "build_sample_catalog", "load_items", "read_item"]
