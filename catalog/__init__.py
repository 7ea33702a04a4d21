"""STAC catalogs: build the local one, search it or any STAC API, store items, load them lazily."""

from geovigie.catalog._aoi import Aoi, UnknownAreaError, aoi_from_file, parse_aoi
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
from geovigie.catalog._cache import (
    AssetCache,
    AssetChecksumError,
    AssetDownloadError,
    cache_dir_of,
    fetch_asset,
    patch_url_through,
    unsigned,
)
from geovigie.catalog._composite import median_composite, require_clear, s2_composite
from geovigie.catalog._landsat import QaOptions, landsat_asset, load_landsat, qa_clear, sr_to_reflectance, st_to_celsius
from geovigie.catalog._load import load_items
from geovigie.catalog._ortho import (
    ORTHO_COLLECTION,
    OrthoIngestReport,
    convert_to_cog,
    ingest_ortho,
    ortho_collection,
)
from geovigie.catalog._pgstac import MirroredItemStore, PgstacItemStore, export_static
from geovigie.catalog._query import SearchQuery
from geovigie.catalog._raster_item import is_raster_file, raster_item
from geovigie.catalog._search import CatalogClient, ItemSearch, read_item
from geovigie.catalog._sentinel2 import (
    MaskOptions,
    band_asset,
    clear_from_scl,
    clear_from_theia,
    load_s2,
    processor,
    reflectance_scaling,
)
from geovigie.catalog._sources import (
    BUILTIN,
    ImageryQuery,
    Provider,
    UnknownProviderError,
    resolve_provider,
    search_imagery,
    signer,
)
from geovigie.catalog._store import ApiItemSource, ItemSource, ItemStore, StaticItemStore, check_id, open_store
from geovigie.catalog._wms import (
    GEOPLATEFORME_WMS,
    ORTHO_LAYERS,
    WmsCapabilities,
    WmsClient,
    WmsError,
    fetch_wms,
    snap_grid,
)
from geovigie.errors import DatabaseError  # what the pgstac store raises (the server manager: geovigie.postgres)

__all__ = [
    "BUILTIN",
    "GEOPLATEFORME_WMS",
    "GERS",
    "MUENSTER",
    "ORTHO_COLLECTION",
    "ORTHO_LAYERS",
    "SAMPLE_COLLECTIONS",
    "SLOVENIA",
    "SLOVENIA_CLOUDY",
    "SLOVENIA_LABELS",
    "SLOVENIA_NODATA",
    "Aoi",
    "ApiItemSource",
    "AssetCache",
    "AssetChecksumError",
    "AssetDownloadError",
    "CatalogClient",
    "DatabaseError",
    "ImageryQuery",
    "ItemSearch",
    "ItemSource",
    "ItemStore",
    "MaskOptions",
    "MirroredItemStore",
    "OrthoIngestReport",
    "PgstacItemStore",
    "Provider",
    "QaOptions",
    "SearchQuery",
    "StaticItemStore",
    "UnknownAreaError",
    "UnknownProviderError",
    "WmsCapabilities",
    "WmsClient",
    "WmsError",
    "aoi_from_file",
    "band_asset",
    "build_sample_catalog",
    "cache_dir_of",
    "check_id",
    "clear_from_scl",
    "clear_from_theia",
    "convert_to_cog",
    "export_static",
    "fetch_asset",
    "fetch_wms",
    "ingest_ortho",
    "landsat_asset",
    "load_items",
    "load_landsat",
    "load_s2",
    "median_composite",
    "open_store",
    "is_raster_file",
    "raster_item",
    "parse_aoi",
    "patch_url_through",
    "ortho_collection",
    "processor",
    "qa_clear",
    "read_item",
    "reflectance_scaling",
    "require_clear",
    "resolve_provider",
    "s2_composite",
    "search_imagery",
    "signer",
    "sr_to_reflectance",
    "st_to_celsius",
    "unsigned",
    "snap_grid",
]
