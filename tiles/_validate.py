"""Offline STAC validation against the official JSON schemas.

pystac bundles the STAC core schemas (v1.1.0) but fetches extension schemas from the web, which this product's
machines cannot reach. The official schemas of every extension geovigie writes ship in `tiles/schemas/`
(`<extension>/<version>/schema.json`, origin and licence in its README); `OfflineValidator` serves them by URI,
including the schemas they reference. An extension without a shipped schema is an error, never a silent pass.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pystac
from pystac.validation import JsonSchemaSTACValidator, set_validator
from pystac.validation.stac_validator import GetSchemaError

SCHEMA_DIR = Path(__file__).with_name("schemas")
_PROJJSON = "https://proj.org/schemas/v0.7/projjson.schema.json"


@cache
def shipped_schemas() -> dict[str, dict[str, Any]]:
    """The shipped schemas by URI: `https://stac-extensions.github.io/<ext>/<version>/schema.json` (and PROJJSON)."""
    schemas: dict[str, dict[str, Any]] = {}
    for path in sorted(SCHEMA_DIR.glob("*/*/schema.json")):
        extension, version = path.parent.parent.name, path.parent.name
        uri = _PROJJSON if extension == "projjson" else f"https://stac-extensions.github.io/{extension}/{version}/schema.json"
        schemas[uri] = json.loads(path.read_text(encoding="utf-8"))
    return schemas


class OfflineValidator(JsonSchemaSTACValidator):
    """pystac's JSON-schema validator with the official extension schemas served from the package, never fetched."""

    def __init__(self) -> None:
        super().__init__()
        self.schema_cache.update(shipped_schemas())

    def _get_schema(self, schema_uri: str) -> dict[str, Any]:
        key = schema_uri.split("#", 1)[0]
        if key not in self.schema_cache:
            raise GetSchemaError(schema_uri, LookupError(f"no shipped schema for {schema_uri} (see tiles/schemas)"))
        return self.schema_cache[key]


def use_offline_validation() -> None:
    """Make `item.validate()` work offline for every item geovigie writes."""
    set_validator(OfflineValidator())


def validate_offline(obj: pystac.STACObject) -> list[str]:
    """Validate with the offline validator; returns the schema URIs checked."""
    use_offline_validation()
    return obj.validate()
