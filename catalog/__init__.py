"""The catalog: where imagery and published layers are found and kept, and how their pixels are read.

- `geovigie.catalog.stac`: STAC access: queries (CQL2, the cloud rule), item stores (static, pgstac, a STAC API)
  chosen by `open_store`, the search client, any raster described as an item.
- `geovigie.catalog.imagery`: providers and areas of interest, the shared asset cache, lazy loading (odc-stac),
  median composites.
- `geovigie.catalog.sensors`: Sentinel-2 and Landsat radiometry and cloud masks.
- `geovigie.catalog.ortho`: IGN orthophotos: dalles ingest, WMS fetch.
- `geovigie.catalog.samples`: the sample catalog of the images shipped in `data/`.

The four names most code needs are also here.
"""

from geovigie.catalog.stac import CatalogClient, SearchQuery, open_store, read_item

__all__ = ["CatalogClient", "SearchQuery", "open_store", "read_item"]
