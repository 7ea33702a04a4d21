"""What a job request carries for its area tasks, checked at POST time (422 naming the field):

- `zan`: two published class layers (`before`, `after`: layer ids, same grid), the zones (none: the territory as
  one zone; `insee:CODE` / `dep:CODE` codes of the shipped IGN Admin Express boundaries; or GeoJSON features with an
  id and a name), a shipped mapping's name and the MMU. The ZAN dates are the job's period: start = first pass,
  end = second pass.
- `dumps`: a shipped LiDAR HD height model (`height_model`: a folder of the sample data with DSM/ and DTM/
  GeoTIFFs, e.g. `lidarhd-montpellier-ign`), optionally a published probability / class layer (a dump model's
  output; a published prediction is read on its dump class's probability band, `class_name` or the card's positive
  class; without one the height above ground stands in and every site is a candidate), the watch, the pass date
  (default: the period's end), threshold, smallest site, minimum height, communes (`zones`) and sensitive zones
  (GeoJSON features with a `name`, by short name).

Nothing a request gives reaches a file path: layers are looked up by id in the results store, mappings and height
models by name among the shipped ones.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field

from geovigie.errors import GeovigieError
from geovigie.settings import Settings

LAYER_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
NAME = r"^[a-z0-9][a-z0-9-]{0,63}$"
SHORT_NAME = r"^[a-z][a-z0-9_]{0,31}$"
MAX_SENSITIVE_FEATURES = 5000
Zones = str | list[Annotated[str, Field(max_length=20)]] | dict[str, Any] | None
ZONES_HELP = ("None: the territory as one zone; insee:CODE / dep:CODE codes of the shipped IGN Admin Express "
              "boundaries (a list, or commas); or a GeoJSON Feature / FeatureCollection (WGS84) with an id property "
              "(zone_id, code, INSEE_COM, id) and a name.")


class ZanIn(BaseModel):
    """Inputs of the `zan` task."""

    model_config = ConfigDict(extra="forbid")

    before: str = Field(pattern=LAYER_ID, description="Published class layer of the first pass (layer id).")
    after: str = Field(pattern=LAYER_ID, description="Published class layer of the second pass, same grid.")
    zones: Zones = Field(None, description=ZONES_HELP)
    mapping: str = Field("odeon-naf", pattern=NAME, description="A shipped ZAN mapping: odeon-naf, odeon-urbain, "
                         "landcover-s2l1c-slovenia.")
    place: str | None = Field(None, pattern=NAME, description="Name in the layer ids (default: job-<id>).")
    mmu_building_m2: float = Field(200.0, ge=0, le=1e6, description="MMU of buildings, m².")
    mmu_other_m2: float = Field(500.0, ge=0, le=1e6, description="MMU of other features, m².")
    min_coverage: float = Field(0.95, ge=0, le=1, description="Observed share below which a zone's figures are "
                                "null.")


class DumpsIn(BaseModel):
    """Inputs of the `dumps` task."""

    model_config = ConfigDict(extra="forbid")

    height_model: str = Field(pattern=NAME, description="A shipped LiDAR HD height model (DSM/ and DTM/ folders), "
                              "e.g. lidarhd-montpellier-ign.", examples=["lidarhd-montpellier-ign"])
    layer: str | None = Field(None, pattern=LAYER_ID, description="Published probability or class layer (a dump "
                              "model's output); none: height above ground stands in (candidates).")
    validated: bool = Field(False, description="`layer` is a validated dump model's output (else: candidates).")
    watch: str | None = Field(None, pattern=NAME, description="Area followed pass after pass (default: job-<id>).")
    pass_date: date | None = Field(None, description="Date of the pass (default: the period's end).")
    threshold: float = Field(0.5, ge=0, le=1, description="Probability threshold.")
    class_value: int | None = Field(None, ge=0, le=255, description="Class of dump sites in a class layer.")
    class_name: str | None = Field(None, min_length=1, max_length=100, description="Class of the dump sites by "
                                   "name (a published prediction's probability band); default: the bundle's one "
                                   "class that is not background.")
    min_area_m2: float = Field(20.0, ge=0, le=1e7, description="Smallest site, m².")
    min_height_m: float = Field(0.2, ge=0, le=1000, description="Height above terrain a pixel must exceed to count "
                                "in a volume, m.")
    min_observed: float = Field(0.5, gt=0, le=1, description="Share of an earlier site's footprint the pass must "
                                "observe (pixels with data) to call it removed; below, it is not_observed.")
    zones: Zones = Field(None, description="Communes naming each site (" + ZONES_HELP + ")")
    sensitive: dict[Annotated[str, Field(pattern=SHORT_NAME)], dict[str, Any]] | None = Field(
        None, max_length=8, description="Layers to measure distances to, by short name: GeoJSON FeatureCollections "
        "(WGS84) whose features have a `name`.")


def _refuse(field: str, message: str) -> HTTPException:
    return HTTPException(422, f"{field}: {message}")


def _class_layer(settings: Settings, field: str, layer_id: str, kinds: tuple[str, ...]) -> None:
    from geovigie.tiles import LayerIndex, results_store_for

    try:
        layer = LayerIndex(results_store_for(settings)).get(layer_id)
    except GeovigieError as err:
        raise _refuse(field, f"no published layer {layer_id!r} ({err})") from None
    if layer.kind not in kinds:
        raise _refuse(field, f"layer {layer_id!r} is a {layer.kind} layer; a {' or '.join(kinds)} raster is needed")


def _zones(settings: Settings, field: str, spec: Zones, territory: Any, label: str) -> None:
    from geovigie.diagnostics import request_zones

    if spec is None:
        return
    try:
        request_zones(spec, territory=territory, label=label, sample_dir=settings.sample_data_path())
    except GeovigieError as err:
        raise _refuse(field, str(err).removeprefix("zones: ")) from None


def check_zan(settings: Settings, spec: ZanIn, territory: Any, label: str) -> None:
    """The ZAN inputs exist and fit, else 422 naming the field."""
    from geovigie.diagnostics import shipped_mapping

    if spec.before == spec.after:
        raise _refuse("zan.after", "the same layer as zan.before; give the class maps of two passes")
    _class_layer(settings, "zan.before", spec.before, ("classes",))
    _class_layer(settings, "zan.after", spec.after, ("classes",))
    try:
        shipped_mapping(spec.mapping)
    except GeovigieError as err:
        raise _refuse("zan.mapping", str(err)) from None
    _zones(settings, "zan.zones", spec.zones, territory, label)


def _height_model_bounds(folder: Path) -> tuple[float, float, float, float] | None:
    """WGS84 bounds of the DSM tiles of a height model folder; None when it has no DSM and DTM tiles."""
    import rasterio
    from rasterio.warp import transform_bounds

    tiles = sorted((folder / "DSM").glob("*.tif"))
    if not tiles or not any((folder / "DTM").glob("*.tif")):
        return None
    boxes = []
    for tile in tiles:
        with rasterio.open(tile) as src:
            boxes.append(transform_bounds(src.crs, "EPSG:4326", *src.bounds))
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _sensitive(field: str, layers: dict[str, dict[str, Any]]) -> None:
    from shapely.geometry import shape

    for name, value in layers.items():
        where = f"{field}.{name}"
        features = value.get("features") if value.get("type") == "FeatureCollection" else None
        if not isinstance(features, list) or not features:
            raise _refuse(where, "give a GeoJSON FeatureCollection with at least one feature")
        if len(features) > MAX_SENSITIVE_FEATURES:
            raise _refuse(where, f"{len(features)} features, at most {MAX_SENSITIVE_FEATURES}")
        for number, feature in enumerate(features):
            properties = feature.get("properties") if isinstance(feature, dict) else None
            if not isinstance(properties, dict) or not str(properties.get("name") or "").strip():
                raise _refuse(where, f"feature {number} has no 'name' property naming it")
            try:
                geometry = shape(feature["geometry"])
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
                raise _refuse(where, f"feature {number}: not a valid GeoJSON geometry ({err})") from None
            west, south, east, north = geometry.bounds if not geometry.is_empty else (0, 0, 0, 0)
            if geometry.is_empty or west < -180 or east > 180 or south < -90 or north > 90:
                raise _refuse(where, f"feature {number}: empty, or not WGS84 longitude/latitude")


def _detector(settings: Settings, spec: DumpsIn) -> None:
    """The layer's dump class and detector resolve (`workflows.detector_input`), else 422 naming the field."""
    from geovigie.diagnostics import detector_input
    from geovigie.tiles import LayerIndex, results_store_for

    try:
        detector_input(LayerIndex(results_store_for(settings)).get(str(spec.layer)), class_name=spec.class_name,
                       class_value=spec.class_value, claimed_validated=spec.validated)
    except GeovigieError as err:
        message = str(err)
        field = ("dumps.validated" if message.startswith("validated:") else
                 "dumps.class_name" if spec.class_name is not None or "class" in message else "dumps.layer")
        raise _refuse(field, message.removeprefix("validated: ")) from None


def check_dumps(settings: Settings, spec: DumpsIn, territory: Any, label: str) -> None:
    """The dump-site inputs exist and fit, else 422 naming the field."""
    from shapely.geometry import box

    folder = settings.sample_data_path() / spec.height_model
    bounds = _height_model_bounds(folder) if folder.is_dir() else None
    if bounds is None:
        raise _refuse("dumps.height_model", f"no shipped height model {spec.height_model!r} (a folder of the sample "
                      "data with DSM/ and DTM/ GeoTIFFs, e.g. lidarhd-montpellier-ign)")
    if not box(*bounds).intersects(territory):
        raise _refuse("dumps.height_model", f"{spec.height_model} does not cover the territory {label}")
    if spec.layer is not None:
        _class_layer(settings, "dumps.layer", spec.layer, ("classes", "continuous"))
        _detector(settings, spec)
    if spec.class_value is not None and spec.layer is None:
        raise _refuse("dumps.class_value", "only with dumps.layer (a class layer)")
    if spec.class_name is not None and spec.layer is None:
        raise _refuse("dumps.class_name", "only with dumps.layer (a published prediction)")
    if spec.validated and spec.layer is None:
        raise _refuse("dumps.validated", "the height stand-in is never a validated dump model; give dumps.layer")
    _zones(settings, "dumps.zones", spec.zones, territory, label)
    if spec.sensitive:
        _sensitive("dumps.sensitive", spec.sensitive)
