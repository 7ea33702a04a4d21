"""IGN orthophotos (BD ORTHO, ORTHO HR): dalles delivered in a folder ingested as STAC items (optionally as COGs),
or an area fetched from a WMS (the Géoplateforme by default) into one COG and its item."""

from geovigie.catalog.ortho._ingest import ORTHO_COLLECTION, OrthoIngestReport, ingest_ortho, ortho_collection
from geovigie.catalog.ortho._wms import GEOPLATEFORME_WMS, ORTHO_LAYERS, WmsClient, WmsError, fetch_wms, snap_grid

__all__ = [
    "GEOPLATEFORME_WMS",
    "ORTHO_COLLECTION",
    "ORTHO_LAYERS",
    "OrthoIngestReport",
    "WmsClient",
    "WmsError",
    "fetch_wms",
    "ingest_ortho",
    "ortho_collection",
    "snap_grid",
]
