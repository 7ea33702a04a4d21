"""Offline STAC validation.

pystac bundles the STAC core JSON schemas but fetches extension schemas from the web, which this
product's machines cannot reach. `OfflineValidator` validates core objects with pystac's bundled
schemas and each extension we write with a minimal schema of our own, stating the field types of
that extension's specification for the fields geovigie writes. An extension without such a schema
is an error, never a silent pass.
"""

from __future__ import annotations

from typing import Any

import pystac
from pystac.validation import JsonSchemaSTACValidator, set_validator
from pystac.validation.stac_validator import GetSchemaError

_NUM = {"type": "number"}
_HEX = {"type": "string", "pattern": "^[0-9A-Fa-f]{6}$"}


def _fields_schema(name: str, properties: dict[str, Any], where: str = "assets") -> dict[str, Any]:
    """A schema checking `properties` wherever they appear: item properties and every asset."""
    fields = {"type": "object", "properties": properties}
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": f"geovigie-offline:{name}",
        "type": "object",
        "properties": {
            "properties": fields,
            where: {"type": "object", "additionalProperties": fields},
        },
    }


_CLASS = {
    "type": "object",
    "required": ["value", "name"],
    "properties": {
        "value": {"type": "integer"},
        "name": {"type": "string", "pattern": "^[0-9A-Za-z-_]+$"},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "color_hint": _HEX,
        "nodata": {"type": "boolean"},
    },
}
_RASTER_BAND = {
    "type": "object",
    "properties": {
        "nodata": {"oneOf": [_NUM, {"type": "string", "enum": ["nan", "inf", "-inf"]}, {"type": "null"}]},
        "data_type": {"enum": ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                               "float16", "float32", "float64", "cint16", "cint32", "cfloat32", "cfloat64", "other"]},
        "scale": _NUM, "offset": _NUM, "spatial_resolution": _NUM, "unit": {"type": "string"},
        "classification:classes": {"type": "array", "items": _CLASS},
    },
}
SCHEMAS: dict[str, dict[str, Any]] = {
    "https://stac-extensions.github.io/classification/v2.0.0/schema.json": _fields_schema(
        "classification", {"classification:classes": {"type": "array", "minItems": 1, "items": _CLASS}}
    ),
    "https://stac-extensions.github.io/processing/v1.2.0/schema.json": _fields_schema(
        "processing",
        {
            "processing:lineage": {"type": "string"},
            "processing:level": {"type": "string"},
            "processing:facility": {"type": "string"},
            "processing:datetime": {"type": "string", "format": "date-time"},
            "processing:version": {"type": "string"},
            "processing:software": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    ),
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json": _fields_schema(
        "projection",
        {
            "proj:code": {"type": ["string", "null"]},
            "proj:shape": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "integer"}},
            "proj:transform": {"type": "array", "minItems": 6, "maxItems": 9, "items": _NUM},
            "proj:bbox": {"type": "array", "minItems": 4, "items": _NUM},
        },
    ),
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json": _fields_schema(
        "projection-1.1",
        {
            "proj:epsg": {"type": ["integer", "null"]},
            "proj:wkt2": {"type": ["string", "null"]},
            "proj:projjson": {"type": ["object", "null"]},
            "proj:shape": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "integer"}},
            "proj:transform": {"type": "array", "minItems": 6, "maxItems": 9, "items": _NUM},
            "proj:bbox": {"type": "array", "minItems": 4, "items": _NUM},
        },
    ),
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json": _fields_schema(
        "raster", {"raster:bands": {"type": "array", "items": _RASTER_BAND}}
    ),
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json": _fields_schema(
        "eo",
        {"eo:bands": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "common_name": {"type": "string"}, "center_wavelength": _NUM}}},
         "eo:cloud_cover": {"type": "number", "minimum": 0, "maximum": 100}},
    ),
    "https://stac-extensions.github.io/render/v2.0.0/schema.json": _fields_schema(
        "render",
        {"renders": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["assets"],
            "properties": {
                "assets": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                "rescale": {"type": "array", "items": {"type": "array", "minItems": 2, "maxItems": 2, "items": _NUM}},
                "colormap_name": {"type": "string"}, "nodata": {"type": ["number", "string"]},
                "title": {"type": "string"}, "resampling": {"type": "string"},
            }}}},
    ),
}


class OfflineValidator(JsonSchemaSTACValidator):
    """pystac's JSON-schema validator with extension schemas served locally, never fetched."""

    def __init__(self) -> None:
        super().__init__()
        self.schema_cache.update(SCHEMAS)

    def _get_schema(self, schema_uri: str) -> dict[str, Any]:
        if schema_uri not in self.schema_cache:
            raise GetSchemaError(schema_uri, LookupError(f"no offline schema for {schema_uri}"))
        return self.schema_cache[schema_uri]


def use_offline_validation() -> None:
    """Make `item.validate()` work offline for every item geovigie writes."""
    set_validator(OfflineValidator())


def validate_offline(obj: pystac.STACObject) -> list[str]:
    """Validate with the offline validator; returns the schema URIs checked."""
    use_offline_validation()
    return obj.validate()
