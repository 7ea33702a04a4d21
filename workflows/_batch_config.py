"""The batch configuration (TOML): which items to watch, which tasks to run on them, where results go.

```toml
name = "slovenia-landcover"            # the state file's name (default: the config file's stem)
source = "geovigie-data/catalog"       # catalog.json (or its folder), a STAC API URL, or a settings name
collection = "s2-l1c-slovenia"         # or a list
bbox = [14.0, 45.0, 16.0, 47.0]        # or aoi = "zone.geojson" (any polygon layer, any CRS)
datetime = "2015-01-01/.."             # optional
output_dir = "geovigie-data"           # default: the settings' data_dir
query = { "geovigie:cloudy" = { eq = false } }                        # optional, STAC query extension
filter = { op = "<", args = [{ property = "eo:cloud_cover" }, 20] }  # optional, CQL2-JSON

[[tasks]]
kind = "landcover"                     # landcover | ndvi | temperature
bundle = "landcover-s2l1c-slovenia-v1" # a bundle folder or the name of a shipped bundle
```

Relative paths are taken from the config file's folder. `query` and `filter` are evaluated here on each item's
properties (for a static catalog and a STAC API alike), after the collection/bbox/datetime search.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import pystac
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from geovigie.errors import InputNotFoundError, InvalidInputError

QUERY_OPS = ("eq", "neq", "lt", "lte", "gt", "gte", "in", "startsWith", "endsWith", "contains")
"""Operators of the STAC query extension understood in `query`."""
CQL2_OPS = ("and", "or", "not", "=", "<>", "<", "<=", ">", ">=", "in", "isNull", "like", "between")
"""CQL2-JSON operators understood in `filter` (no spatial ones: use `aoi` or `bbox`)."""


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
        if self.tile_size is not None and self.overlap is not None and self.overlap >= self.tile_size:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than tile_size ({self.tile_size})")
        return self


class NdviTask(_Task):
    """Cloud-masked NDVI of a Sentinel-2 L2A (Theia) item."""

    kind: Literal["ndvi"]
    crs: str = "EPSG:2154"
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
    filter: dict[str, Any] | None = None
    max_items: int = Field(1000, ge=1, description="At most this many items per search.")
    output_dir: Path | None = None
    tasks: list[BatchTask] = Field(min_length=1)

    @property
    def collections(self) -> list[str]:
        """The searched collection ids."""
        return [self.collection] if isinstance(self.collection, str) else list(self.collection)

    @field_validator("query")
    @classmethod
    def _known_query_ops(cls, value: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]] | None:
        for prop, ops in (value or {}).items():
            unknown = [op for op in ops if op not in QUERY_OPS]
            if unknown:
                raise ValueError(f"query on {prop!r}: unknown operator {unknown[0]!r}; known: {', '.join(QUERY_OPS)}")
        return value

    @field_validator("filter")
    @classmethod
    def _known_cql2_ops(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            _check_cql2(value)
        return value

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
    if not path.is_file():
        raise InputNotFoundError(f"batch config not found: {path}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InvalidInputError(f"{path}: not valid TOML ({err})") from err
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
    try:
        config = BatchConfig.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in err.errors())
        raise InvalidInputError(f"{path}: {problems}") from err
    if config.aoi is not None and not config.aoi.is_file():
        raise InputNotFoundError(f"{path}: aoi file not found: {config.aoi}")
    return config


def _check_cql2(node: Any) -> None:
    """Refuse CQL2-JSON operators this evaluator does not know, naming them."""
    if isinstance(node, dict) and "op" in node:
        if node["op"] not in CQL2_OPS:
            raise ValueError(f"filter: CQL2 operator {node['op']!r} is not supported here; known: "
                             f"{', '.join(CQL2_OPS)} (use aoi or bbox for a spatial filter)")
        if not isinstance(node.get("args"), list):
            raise ValueError(f"filter: operator {node['op']!r} needs an args list")
        for arg in node["args"]:
            _check_cql2(arg)
    elif isinstance(node, list):
        for arg in node:
            _check_cql2(arg)


def _value(item: pystac.Item, name: str) -> Any:
    if name == "id":
        return item.id
    if name == "collection":
        return item.collection_id
    return item.properties.get(name)


def _compare(op: str, left: Any, right: Any) -> bool:
    """A comparison that is False, not an error, when a side is missing or the types differ."""
    if left is None or right is None:
        return op in ("<>", "neq") and left is not right
    try:
        return {"=": left == right, "<>": left != right, "<": left < right, "<=": left <= right,
                ">": left > right, ">=": left >= right}[op]
    except TypeError:
        return op == "<>"


def _operand(item: pystac.Item, node: Any) -> Any:
    if isinstance(node, dict):
        if "property" in node:
            return _value(item, node["property"])
        for key in ("timestamp", "date"):  # ISO strings compare in time order
            if key in node:
                return node[key]
        if "interval" in node:
            return node["interval"]
    return node


def cql2_matches(item: pystac.Item, node: dict[str, Any]) -> bool:
    """Whether `item` satisfies a CQL2-JSON expression (see `CQL2_OPS`)."""
    op, args = node["op"], node["args"]
    if op == "and":
        return all(cql2_matches(item, a) for a in args)
    if op == "or":
        return any(cql2_matches(item, a) for a in args)
    if op == "not":
        return not cql2_matches(item, args[0])
    values = [_operand(item, a) for a in args]
    if op == "isNull":
        return values[0] is None
    if op == "in":
        return values[0] is not None and values[0] in values[1]
    if op == "between":
        return _compare(">=", values[0], values[1]) and _compare("<=", values[0], values[2])
    if op == "like":
        pattern = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in str(values[1]))
        return isinstance(values[0], str) and re.fullmatch(pattern, values[0]) is not None
    return _compare(op, values[0], values[1])


def query_matches(item: pystac.Item, query: dict[str, dict[str, Any]]) -> bool:
    """Whether `item` satisfies a STAC query-extension object (see `QUERY_OPS`)."""
    symbols = {"eq": "=", "neq": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
    for prop, ops in query.items():
        value = _value(item, prop)
        for op, wanted in ops.items():
            if op in symbols:
                ok = _compare(symbols[op], value, wanted)
            elif op == "in":
                ok = value in (wanted if isinstance(wanted, Sequence) and not isinstance(wanted, str) else [wanted])
            elif op == "contains":
                ok = isinstance(value, list | str) and wanted in value
            else:  # startsWith, endsWith
                method = "startswith" if op == "startsWith" else "endswith"
                ok = isinstance(value, str) and getattr(value, method)(str(wanted))
            if not ok:
                return False
    return True
