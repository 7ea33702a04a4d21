"""Imagery: where to find it (providers, areas of interest), getting its pixels (the shared asset cache, lazy
loading with odc-stac) and per-period median composites."""

from geovigie.catalog.imagery._aoi import Aoi, UnknownAreaError, aoi_from_file, parse_aoi
from geovigie.catalog.imagery._cache import (
    AssetCache,
    AssetChecksumError,
    AssetDownloadError,
    cache_dir_of,
    fetch_asset,
    patch_url_through,
    unsigned,
)
from geovigie.catalog.imagery._composite import median_composite, require_clear, s2_composite
from geovigie.catalog.imagery._load import load_items
from geovigie.catalog.imagery._sources import (
    BUILTIN,
    Provider,
    UnknownProviderError,
    resolve_provider,
    search_imagery,
    signer,
)

__all__ = [
    "BUILTIN",
    "Aoi",
    "AssetCache",
    "AssetChecksumError",
    "AssetDownloadError",
    "Provider",
    "UnknownAreaError",
    "UnknownProviderError",
    "aoi_from_file",
    "cache_dir_of",
    "fetch_asset",
    "load_items",
    "median_composite",
    "parse_aoi",
    "patch_url_through",
    "require_clear",
    "resolve_provider",
    "s2_composite",
    "search_imagery",
    "signer",
    "unsigned",
]
