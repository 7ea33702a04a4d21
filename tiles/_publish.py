"""Publish layers: each COG gets a STAC item (proj, raster, classification, processing, render) in the
results collection, pointing to the model bundle and the inputs that made it."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pystac
from pystac.extensions.classification import Classification, ClassificationExtension
from pystac.extensions.processing import ProcessingExtension
from pystac.extensions.raster import RasterExtension
from pystac.extensions.render import Render, RenderExtension
from rio_stac import create_stac_item

import geovigie
from geovigie.atomic import atomic_path
from geovigie.catalog import ItemStore, check_id
from geovigie.classes import ClassInfo
from geovigie.errors import InvalidInputError
from geovigie.tiles._backend import results_store
from geovigie.types import NODATA_CLASS

RESULTS_COLLECTION = "geovigie-results"
MODEL_CARD_ASSET = "model-card"


@dataclass(frozen=True)
class VectorStyle:
    """How the map draws a vector layer: one colour, or features coloured by a numeric column.

    `popup` lists the properties shown when a feature is clicked (all when empty); `label` names the property
    used as a feature's title.
    """

    color: str = "#d7301f"
    color_by: str | None = None
    colormap_name: str = "ylgn"
    rescale: tuple[float, float] | None = None
    unit: str | None = None
    popup: Sequence[str] = ()
    label: str | None = None
    base: bool = False
    """A base-map layer (administrative boundaries): drawn under everything, always on, not listed."""

    def as_dict(self) -> dict[str, object]:
        """JSON form stored in the item (`geovigie:style`)."""
        return {"color": self.color, "color_by": self.color_by, "colormap_name": self.colormap_name,
                "rescale": list(self.rescale) if self.rescale else None, "unit": self.unit,
                "popup": list(self.popup), "label": self.label, "base": self.base}


@dataclass(frozen=True)
class LayerSpec:
    """What a layer is and how to draw it.

    `kind` is "classes" (uint8 class map, its palette embedded), "continuous" (one float band,
    drawn with `rescale` and `colormap_name`, values in `unit`) or "vector" (GeoJSON features drawn with `style`).
    """

    id: str
    title: str
    kind: str
    classes: Sequence[ClassInfo] = ()
    rescale: tuple[float, float] | None = None
    colormap_name: str | None = None
    unit: str | None = None
    description: str = ""
    style: VectorStyle | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    """Extra item properties, e.g. `geovigie:diagnostic` naming the diagnostic that made the layer."""


@dataclass(frozen=True)
class Provenance:
    """Where a layer comes from: input STAC items, the model bundle (if any) and the processing."""

    inputs: Sequence[str]
    lineage: str
    bundle_card: Path | None = None
    """The bundle's card.json: copied beside the layer, so published items never point into the server's disk."""
    bundle_id: str | None = None
    datetime: dt.datetime | None = None
    start_datetime: dt.datetime | None = None
    end_datetime: dt.datetime | None = None
    extra_assets: dict[str, tuple[Path, str]] = field(default_factory=dict)


def results_collection() -> pystac.Collection:
    """The collection every layer is published in."""
    return pystac.Collection(
        id=RESULTS_COLLECTION, title="geovigie layers",
        description="Map layers computed by geovigie: land cover, vegetation, temperature, diagnostics.",
        extent=pystac.Extent(pystac.SpatialExtent([[-180.0, -90.0, 180.0, 90.0]]),
                             pystac.TemporalExtent([[datetime.now(UTC), None]])),
        license="other",
    )


def _place(src: Path, folder: Path, name: str) -> Path:
    """Copy `src` into the layer's folder atomically (the producer keeps its own file, e.g. for reruns)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if src.resolve() != target.resolve():
        with atomic_path(target) as tmp:
            shutil.copyfile(src, tmp)
    return target


def _public_href(href: str, folder: Path, root: Path) -> str:
    """URLs stay; local paths inside the data directory become relative to the layer; others keep their name only."""
    if "://" in href:
        return href
    try:
        path = Path(href).resolve()
    except (ValueError, OSError):  # not a path (an item id without a self link: NUL, control characters)
        return quote(href, safe="")
    if path.is_relative_to(root):
        return Path(os.path.relpath(path, folder)).as_posix()
    return path.name


def publish_layer(store: ItemStore | str | Path, cog: str | Path, spec: LayerSpec,
                  provenance: Provenance) -> pystac.Item:
    """Copy `cog` (and extra assets) into the layer's folder and upsert the layer's STAC item into `store`.

    Args:
        store: the results item store (a folder path means the static store there).
        cog: the layer's raster; the producer keeps its own copy (for idempotent reruns).
        spec: what the layer is and how to draw it.
        provenance: inputs, bundle and processing that made it.

    Returns:
        the stored item; `item.validate()` works offline (see `tiles.use_offline_validation`).
    """
    if not isinstance(store, ItemStore):
        store = results_store(store)
    check_id(spec.id, "layer id")
    folder = store.files_dir(RESULTS_COLLECTION, spec.id)
    data = _place(Path(cog), folder, "data.tif")
    when = provenance.datetime or (None if provenance.start_datetime else datetime.now(UTC))
    props: dict[str, object] = {"title": spec.title, "geovigie:layer_kind": spec.kind, **spec.properties}
    if spec.description:
        props["description"] = spec.description
    if provenance.start_datetime and provenance.end_datetime:
        props["start_datetime"] = provenance.start_datetime.isoformat().replace("+00:00", "Z")
        props["end_datetime"] = provenance.end_datetime.isoformat().replace("+00:00", "Z")
    item = create_stac_item(
        str(data), id=spec.id, input_datetime=when, collection=RESULTS_COLLECTION, properties=props,
        asset_name="data", asset_roles=["data", "visual" if spec.kind == "classes" else "data"],
        asset_href="./data.tif", asset_media_type=pystac.MediaType.COG, with_proj=True, with_raster=True,
        geom_precision=6,
    )
    item.assets["data"].title = spec.title
    for name, (path, title) in provenance.extra_assets.items():
        placed = _place(path, folder, f"{name}{Path(path).suffix or '.tif'}")
        media = pystac.MediaType.COG if placed.suffix == ".tif" else None
        item.add_asset(name, pystac.Asset(f"./{placed.name}", title=title, media_type=media, roles=["data"]))
    root = getattr(store, "root", folder).parent
    _add_classes(item, spec)
    _add_processing(item, provenance, folder, root)
    _add_render(item, spec)
    if spec.unit:
        for band in RasterExtension.ext(item.assets["data"]).bands or []:
            band.unit = spec.unit
    return store.upsert(item, results_collection())


def publish_vector_layer(store: ItemStore | str | Path, features: str | Path, spec: LayerSpec,
                         provenance: Provenance) -> pystac.Item:
    """Copy a GeoJSON FeatureCollection (EPSG:4326) into the layer's folder and upsert its STAC item.

    Extra assets (the same features as GeoPackage or CSV, for instance) travel in `provenance.extra_assets`.

    Raises:
        InvalidInputError: the file is not a GeoJSON FeatureCollection.
    """
    import json

    from shapely.geometry import box, mapping, shape

    if not isinstance(store, ItemStore):
        store = results_store(store)
    check_id(spec.id, "layer id")
    try:
        collection = json.loads(Path(features).read_text(encoding="utf-8"))
        geometries = [shape(f["geometry"]) for f in collection["features"] if f.get("geometry")]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InvalidInputError(f"{features}: not a GeoJSON FeatureCollection ({err})") from err
    folder = store.files_dir(RESULTS_COLLECTION, spec.id)
    _place(Path(features), folder, "data.geojson")
    bounds = _union_bounds(geometries)
    when = provenance.datetime or (None if provenance.start_datetime else datetime.now(UTC))
    props: dict[str, object] = {"title": spec.title, "geovigie:layer_kind": "vector",
                                "geovigie:features": len(collection["features"]), **spec.properties}
    if spec.description:
        props["description"] = spec.description
    if spec.style:
        props["geovigie:style"] = spec.style.as_dict()
    if provenance.start_datetime and provenance.end_datetime:
        props["start_datetime"] = provenance.start_datetime.isoformat().replace("+00:00", "Z")
        props["end_datetime"] = provenance.end_datetime.isoformat().replace("+00:00", "Z")
    item = pystac.Item(spec.id, mapping(box(*bounds)), list(bounds), when, props, collection=RESULTS_COLLECTION)
    item.add_asset("data", pystac.Asset("./data.geojson", title=spec.title, media_type=pystac.MediaType.GEOJSON,
                                        roles=["data"]))
    for name, (path, title) in provenance.extra_assets.items():
        placed = _place(path, folder, f"{name}{Path(path).suffix}")
        media = {".gpkg": pystac.MediaType.GEOPACKAGE, ".csv": "text/csv", ".tif": pystac.MediaType.COG,
                 ".html": pystac.MediaType.HTML}.get(placed.suffix)
        item.add_asset(name, pystac.Asset(f"./{placed.name}", title=title, media_type=media, roles=["data"]))
    _add_processing(item, provenance, folder, getattr(store, "root", folder).parent)
    return store.upsert(item, results_collection())


def _union_bounds(geometries: Sequence[object]) -> tuple[float, float, float, float]:
    """Bounds of all geometries; the whole world when there is none (an empty pass is still a layer)."""
    import shapely

    if not geometries:
        return (-180.0, -90.0, 180.0, 90.0)
    west, south, east, north = shapely.total_bounds(list(geometries))
    return float(west), float(south), float(east), float(north)


def _add_classes(item: pystac.Item, spec: LayerSpec) -> None:
    if spec.kind != "classes":
        return
    ClassificationExtension.add_to(item)
    classes = [
        Classification.create(value=c.value, name=_class_key(c.name), description=c.name,
                              color_hint=c.color.lstrip("#").upper())
        for c in spec.classes
    ]
    classes.append(Classification.create(value=NODATA_CLASS, name="nodata", description="no data", nodata=True))
    ClassificationExtension.ext(item.assets["data"]).classes = classes


def _add_processing(item: pystac.Item, provenance: Provenance, folder: Path, root: Path) -> None:
    ProcessingExtension.add_to(item)
    ext = ProcessingExtension.ext(item)
    ext.lineage = provenance.lineage
    ext.software = {"geovigie": geovigie.__version__}
    if provenance.bundle_id:
        ext.software = {**ext.software, "model-bundle": provenance.bundle_id}
    item.properties["processing:datetime"] = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    if provenance.bundle_id:
        item.properties["geovigie:model_bundle"] = provenance.bundle_id
    for href in provenance.inputs:
        item.add_link(pystac.Link("derived_from", _public_href(href, folder, root), media_type=pystac.MediaType.JSON,
                                  title="input"))
    if provenance.bundle_card:
        card = _place(provenance.bundle_card, folder, "model-card.json")
        item.add_asset(MODEL_CARD_ASSET, pystac.Asset(f"./{card.name}", title=f"model card {provenance.bundle_id}",
                                                      media_type=pystac.MediaType.JSON, roles=["metadata"]))
        item.add_link(pystac.Link("via", f"./{card.name}", media_type=pystac.MediaType.JSON,
                                  title=f"model bundle card {provenance.bundle_id}"))


def _add_render(item: pystac.Item, spec: LayerSpec) -> None:
    RenderExtension.add_to(item)
    if spec.kind == "classes":
        render = Render.create(assets=["data"], title=spec.title, resampling="nearest")
    else:
        render = Render.create(assets=["data"], title=spec.title, rescale=[list(spec.rescale or (0, 1))],
                               colormap_name=spec.colormap_name or "viridis", resampling="bilinear")
    RenderExtension.ext(item).apply({"default": render})


def _class_key(name: str) -> str:
    """A classification extension `name` ([0-9A-Za-z-_]+) from a human class name; the name stays in `description`."""
    import re

    return re.sub(r"_+", "_", re.sub(r"[^0-9A-Za-z_-]", "_", name)).strip("_") or "class"
