"""The batch configuration (TOML): which items to watch, which tasks to run on them, where results go.

```toml
name = "slovenia-landcover"            # the state file's name (default: the config file's stem)
source = "geovigie-data/catalog"       # catalog.json (or its folder), a STAC API URL, or a settings name
collection = "s2-l1c-slovenia"         # or a list
bbox = [14.0, 45.0, 16.0, 47.0]        # or aoi = "zone.geojson" (any polygon layer, any CRS)
datetime = "2015-01-01/.."             # optional
output_dir = "geovigie-data"           # default: the settings' data_dir
filter = "\"processing:level\" = 'L1C'" # optional CQL2, cql2-text or CQL2-JSON ({ op = "<", args = [...] })
query = { "platform" = { eq = "sentinel-2a" } }  # optional, STAC query extension (turned into CQL2)
max_cloud = 20                         # skip items cloudier than this (%), by the demo's rule; 100 keeps all
max_items = 50                         # optional: process at most this many matches per pass (reported)

[[tasks]]
kind = "landcover"                     # landcover | ndvi | temperature
# bundle = "landcover-s2l1c-slovenia-unet-v1"  # a bundle folder or a shipped bundle's name; default: the default
                                       # of `geovigie predict` (geovigie.models.DEFAULT_BUNDLE)
```

Relative paths are taken from the config file's folder. `filter` and `query` form one CQL2 expression: a STAC API
that has the Filter extension evaluates it, anything else (a static catalog, an API without it) is checked with
the `cql2` library, with the same meaning (timestamps as instants, a missing property never matches, spatial
operators on the item geometry).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from geovigie.catalog.stac import DEFAULT_MAX_CLOUD, cql2_filter
from geovigie.config_file import read_toml, validate
from geovigie.errors import InputNotFoundError
from geovigie.settings import check_tiling
from geovigie.types import LAMBERT93

QUERY_OPS = {"eq": "=", "neq": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">=", "in": "in",
             "startsWith": "like", "endsWith": "like"}
"""Operators of the STAC query extension understood in `query`, and the CQL2 operator each becomes."""


class _Task(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LandcoverTask(_Task):
    """A model bundle over each item; published as a class layer with its probabilities."""

    kind: Literal["landcover"]
    bundle: str | None = Field(None, description="Bundle folder or shipped bundle name (default: land cover).")
    tile_size: int | None = Field(None, ge=32)
    overlap: int | None = Field(None, ge=0)
    batch_size: int | None = Field(None, ge=1)
    device: Literal["auto", "cpu", "cuda"] | None = None
    force: bool = False
    product_level: str | None = None

    @model_validator(mode="after")
    def _overlap_below_tile(self) -> LandcoverTask:
        if self.tile_size is not None and self.overlap is not None:
            check_tiling(self.tile_size, self.overlap)
        return self


class NdviTask(_Task):
    """Cloud-masked NDVI of a Sentinel-2 L2A (Theia) item."""

    kind: Literal["ndvi"]
    crs: str = LAMBERT93
    resolution: float = Field(10.0, gt=0)


class TemperatureTask(_Task):
    """Land surface temperature of a Landsat item."""

    kind: Literal["temperature"]


BatchTask = Annotated[LandcoverTask | NdviTask | TemperatureTask, Field(discriminator="kind")]


class BatchConfig(BaseModel):
    """A watched search and the tasks run on every item it finds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    source: str | None = Field(None, description="catalog.json path, STAC API URL or a settings source name.")
    collection: str | list[str]
    bbox: tuple[float, float, float, float] | None = None
    aoi: Path | None = Field(None, description="Polygon file (GeoJSON, GeoPackage...) of the area of interest.")
    datetime: str | None = None
    query: dict[str, dict[str, Any]] | None = None
    filter: dict[str, Any] | None = Field(None, description="CQL2 (cql2-text or CQL2-JSON), kept as CQL2-JSON.")
    max_cloud: float | None = Field(DEFAULT_MAX_CLOUD, ge=0, le=100,
                                    description="Skip items cloudier than this (%); see catalog.cloud_skip_reason.")
    max_items: int | None = Field(None, ge=1, description="Process at most this many matching items per pass.")
    output_dir: Path | None = None
    tasks: list[BatchTask] = Field(min_length=1)

    @property
    def collections(self) -> list[str]:
        """The searched collection ids."""
        return [self.collection] if isinstance(self.collection, str) else list(self.collection)

    @property
    def cql2(self) -> dict[str, Any] | None:
        """`filter` and `query` as one CQL2-JSON expression (None when neither is given)."""
        parts = [*query_to_cql2(self.query or {}), *([self.filter] if self.filter else [])]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else {"op": "and", "args": parts}

    @field_validator("query")
    @classmethod
    def _known_query_ops(cls, value: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]] | None:
        for prop, ops in (value or {}).items():
            unknown = [op for op in ops if op not in QUERY_OPS]
            if unknown:
                raise ValueError(f"query on {prop!r}: unknown operator {unknown[0]!r}; known: {', '.join(QUERY_OPS)} "
                                 "(or write a CQL2 filter)")
        return value

    @field_validator("filter", mode="before")
    @classmethod
    def _valid_cql2(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str | dict):
            raise ValueError("give a CQL2 filter as cql2-text (a string) or CQL2-JSON (a table)")
        return cql2_filter(value)

    @model_validator(mode="after")
    def _one_area_one_task_per_kind(self) -> BatchConfig:
        if self.bbox is not None and self.aoi is not None:
            raise ValueError("give bbox or aoi, not both")
        kinds = [task.kind for task in self.tasks]
        twice = sorted({kind for kind in kinds if kinds.count(kind) > 1})
        if twice:  # each kind publishes one layer per item under a fixed id: a second would overwrite the first
            raise ValueError(f"task kind {twice[0]!r} given twice: one task per kind (they publish the same layer)")
        return self


def load_batch_config(path: str | Path) -> BatchConfig:
    """Read and check a batch TOML file; relative paths in it are taken from its folder.

    Raises:
        InputNotFoundError: no such file.
        InvalidInputError: not TOML, or a missing, unknown or invalid key (each one named).
    """
    path = Path(path)
    raw = read_toml(path, "batch config")
    raw.setdefault("name", path.stem)
    base = path.resolve().parent
    for key in ("aoi", "output_dir"):
        if isinstance(raw.get(key), str):
            raw[key] = str(base / raw[key])
    source = raw.get("source")
    if isinstance(source, str) and not source.startswith(("http://", "https://")) and (base / source).exists():
        raw["source"] = str(base / source)
    for task in raw.get("tasks", []) if isinstance(raw.get("tasks"), list) else []:
        bundle = task.get("bundle") if isinstance(task, dict) else None
        if isinstance(bundle, str) and (base / bundle).is_dir():
            task["bundle"] = str(base / bundle)
    config = validate(BatchConfig, raw, path)
    if config.aoi is not None and not config.aoi.is_file():
        raise InputNotFoundError(f"{path}: aoi file not found: {config.aoi}")
    return config


def query_to_cql2(query: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """A STAC query-extension object as CQL2-JSON comparisons, one per property and operator."""
    parts = []
    for prop, ops in query.items():
        for op, wanted in ops.items():
            if op == "in":
                wanted = list(wanted) if isinstance(wanted, list | tuple) else [wanted]
            elif op in ("startsWith", "endsWith"):
                escaped = str(wanted).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                wanted = f"{escaped}%" if op == "startsWith" else f"%{escaped}"
            parts.append({"op": QUERY_OPS[op], "args": [{"property": prop}, wanted]})
    return parts
