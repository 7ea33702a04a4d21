"""Administrative boundaries published as base-map layers (offline: the map needs no tile server)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd

from geovigie.diagnostics import write_vector
from geovigie.errors import InvalidZonesError
from geovigie.settings import Settings
from geovigie.tiles import LayerSpec, Provenance, VectorStyle, publish_vector_layer, results_store_for
from geovigie.types import LAMBERT93
from geovigie.workflows._published import PublishedLayer, layer_target


def boundaries(settings: Settings, source: str | Path, *, layer_id: str, title: str, code_field: str,
               name_field: str, tolerance_m: float = 0.0,
               edition: tuple[dt.datetime, dt.datetime] | None = None) -> PublishedLayer:
    """Publish polygons (communes, départements) as a base layer `base-...` with their INSEE code and name.

    Args:
        settings: where the layer is published.
        source: a GeoJSON / GeoPackage of polygons.
        layer_id: the layer id; it must start with `base-`.
        title: shown in the map's attribution and popups.
        code_field: the field holding the INSEE code.
        name_field: the field holding the name.
        tolerance_m: simplification tolerance in metres (0 keeps the geometry).
        edition: the period the boundaries describe (e.g. the year of an Admin Express edition), the layer's
            `start_datetime` / `end_datetime`; without it the layer is dated by its publication and says so.
    """
    if not layer_id.startswith("base-"):
        raise InvalidZonesError(f"base layer ids start with 'base-': {layer_id!r}")
    frame = gpd.read_file(source, engine="pyogrio")
    missing = [f for f in (code_field, name_field) if f not in frame.columns]
    if missing:
        raise InvalidZonesError(f"{source}: fields {missing} not found (has {list(frame.columns)})")
    frame = frame[[code_field, name_field, "geometry"]].rename(columns={code_field: "code", name_field: "nom"})
    if tolerance_m > 0:
        frame = frame.to_crs(LAMBERT93)
        frame["geometry"] = frame.geometry.simplify(tolerance_m, preserve_topology=True)
    target = write_vector(frame, layer_target(settings, layer_id, "data.geojson"))
    note = {} if edition else {"geovigie:note": "edition of the boundaries not given: datetime is the publication time"}
    published = publish_vector_layer(results_store_for(settings), target, LayerSpec(
        layer_id, title, "vector", description=f"{title}: IGN Admin Express boundaries (Licence Ouverte / Etalab).",
        style=VectorStyle(color="#6b6b6b", label="nom", popup=("nom", "code"), base=True), properties=note,
    ), Provenance(inputs=[str(Path(source).resolve())], lineage="IGN Admin Express boundaries, reprojected to WGS84",
                  start_datetime=edition[0] if edition else None, end_datetime=edition[1] if edition else None))
    return PublishedLayer(layer_id, "base map", published, f"{len(frame)} polygons")
