"""Publish layers: each COG gets a STAC item (proj, raster, classification, processing, render) in the
results collection, pointing to the model bundle and the inputs that made it.

Every item carries the acquisition date of its imagery (`datetime`, or `start_datetime`/`end_datetime`), taken
from the provenance or, failing that, from the STAC items of its inputs; `created` is the publication time.
Every raster asset describes its bands (`raster:bands`: data type, nodata, scale, offset, unit) and its grid
(projection v2, `proj:code`); class assets carry `classification:classes`, and their COG a GDAL sidecar
(`data.tif.aux.xml`) with the class names, which `gdalinfo` and QGIS show."""

from __future__ import annotations

import datetime as dt
import math
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
from pystac.extensions.eo import EOExtension
from pystac.extensions.processing import ProcessingExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import NoDataStrings, RasterBand, RasterExtension
from pystac.extensions.render import Render, RenderExtension
from rio_stac import create_stac_item
from rio_stac.stac import get_projection_info

import geovigie
from geovigie.atomic import atomic_path
from geovigie.catalog.stac import ItemStore, check_id
from geovigie.classes import ClassInfo
from geovigie.cog import write_category_names
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


LICENCE = "etalab-2.0"
LICENCE_URL = "https://www.etalab.gouv.fr/wp-content/uploads/2017/04/ETALAB-Licence-Ouverte-v2.0.pdf"
LAYER_KINDS = ("classes", "continuous", "vector")


def results_collection() -> pystac.Collection:
    """The collection every layer is published in (Licence Ouverte 2.0, linked; summaries of the layer kinds)."""
    collection = pystac.Collection(
        id=RESULTS_COLLECTION, title="geovigie layers",
        description="Map layers computed by geovigie: land cover, vegetation, temperature, diagnostics. "
                    "Derived from Copernicus Sentinel, USGS Landsat and IGN data; published under the Licence "
                    "Ouverte / Open Licence 2.0 (Etalab).",
        extent=pystac.Extent(pystac.SpatialExtent([[-180.0, -90.0, 180.0, 90.0]]),
                             pystac.TemporalExtent([[datetime.now(UTC), None]])),
        license=LICENCE,
        summaries=pystac.Summaries({"geovigie:layer_kind": list(LAYER_KINDS)}),
    )
    collection.add_link(pystac.Link("license", LICENCE_URL, media_type="application/pdf",
                                    title="Licence Ouverte / Open Licence 2.0"))
    return collection


def _iso(value: dt.datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _input_items(inputs: Sequence[str]) -> list[pystac.Item]:
    """The STAC items of local inputs: the item file itself, or an item beside a raster that names the raster."""
    items: list[pystac.Item] = []
    for href in inputs:
        if "://" in href:
            continue
        try:
            path = Path(href).resolve()
            candidates = [path] if path.suffix == ".json" else sorted(path.parent.glob("*.json"))
        except (OSError, ValueError):
            continue
        for candidate in candidates:
            try:
                item = pystac.Item.from_file(str(candidate))
            except Exception:  # noqa: BLE001 - not an item (a card, a collection): not an input's metadata
                continue
            if path.suffix == ".json" or any(Path(a.get_absolute_href() or "").resolve() == path
                                             for a in item.assets.values()):
                items.append(item)
    return items


def acquisition_dates(provenance: Provenance) -> tuple[dt.datetime | None, dt.datetime | None, dt.datetime | None]:
    """(datetime, start, end) of the imagery behind a layer: the provenance's, else its input items' (one date
    when they share it, else the interval they span); (None, None, None) when nothing dates it."""
    if provenance.start_datetime and provenance.end_datetime:
        return None, provenance.start_datetime, provenance.end_datetime
    if provenance.datetime:
        return provenance.datetime, None, None
    starts, ends = [], []
    for item in _input_items(provenance.inputs):
        common = item.common_metadata
        start, end = common.start_datetime or item.datetime, common.end_datetime or item.datetime
        if start and end:
            starts.append(start)
            ends.append(end)
    if not starts:
        return None, None, None
    if min(starts) == max(ends):
        return min(starts), None, None
    return None, min(starts), max(ends)


INHERITED = ("platform", "constellation", "instruments", "gsd")
"""Input item properties a layer keeps when all its dated inputs agree on them (users filter on them)."""


def _inherit(item: pystac.Item, provenance: Provenance) -> None:
    """Keep the inputs' `eo:cloud_cover` (the cloudiest input's) and the properties they share (platform...)."""
    inputs = _input_items(provenance.inputs)
    if not inputs:
        return
    covers = [i.properties["eo:cloud_cover"] for i in inputs
              if isinstance(i.properties.get("eo:cloud_cover"), int | float)]
    if len(covers) == len(inputs):
        EOExtension.add_to(item)
        item.properties["eo:cloud_cover"] = max(covers)
    for key in INHERITED:
        values = [i.properties.get(key) for i in inputs]
        if values[0] is not None and all(v == values[0] for v in values):
            item.properties.setdefault(key, values[0])


def _dated(props: dict[str, object], provenance: Provenance) -> dt.datetime | None:
    """Set `created` and the acquisition interval in `props`; returns the item's `datetime` (None for intervals).

    A layer nothing dates (a base map from a file) keeps its publication time as `datetime`."""
    now = datetime.now(UTC)
    props["created"] = _iso(now)
    when, start, end = acquisition_dates(provenance)
    if start and end:
        props["start_datetime"], props["end_datetime"] = _iso(start), _iso(end)
        return None
    return when or now


def _exists(path: Path) -> bool:
    """`path.exists()` that answers False for names the file system refuses (too long, NUL...)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


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
    props: dict[str, object] = {"title": spec.title, "geovigie:layer_kind": spec.kind, **spec.properties}
    if spec.description:
        props["description"] = spec.description
    when = _dated(props, provenance)
    item = create_stac_item(
        str(data), id=spec.id, input_datetime=when, collection=RESULTS_COLLECTION, properties=props,
        asset_name="data", asset_roles=["data", "visual"] if spec.kind == "classes" else ["data"],
        asset_href="./data.tif", asset_media_type=pystac.MediaType.COG, with_proj=False, with_raster=True,
        geom_precision=6,
    )
    item.assets["data"].title = spec.title
    _describe_raster(item, "data", data, spec.unit)
    for name, (path, title) in provenance.extra_assets.items():
        placed = _place(path, folder, f"{name}{Path(path).suffix or '.tif'}")
        media = pystac.MediaType.COG if placed.suffix == ".tif" else None
        item.add_asset(name, pystac.Asset(f"./{placed.name}", title=title, media_type=media, roles=["data"]))
        if placed.suffix == ".tif":
            _describe_raster(item, name, placed, None)
    root = getattr(store, "root", folder).parent
    _inherit(item, provenance)
    _add_classes(item, spec, folder, data)
    _add_processing(item, provenance, folder, root)
    _add_render(item, spec)
    return store.upsert(item, results_collection())


def _nodata(value: float | None) -> float | NoDataStrings | None:
    """A nodata value as JSON and the raster extension write it: NaN and infinities as "nan", "inf", "-inf"."""
    if value is None or math.isfinite(value):
        return value
    if math.isnan(value):
        return NoDataStrings.NAN
    return NoDataStrings.INF if value > 0 else NoDataStrings.NINF


def _describe_raster(item: pystac.Item, key: str, path: Path, unit: str | None) -> None:
    """Projection v2 (`proj:code`, shape, transform, bbox) and `raster:bands` (data type, nodata, scale, offset,
    unit, resolution; rio-stac's statistics kept) of the COG asset `key`, read from the file."""
    import rasterio

    asset = item.assets[key]
    ProjectionExtension.add_to(item)
    RasterExtension.add_to(item)
    with rasterio.open(path) as src:
        info = get_projection_info(src)
        proj = ProjectionExtension.ext(asset)
        proj.code = f"EPSG:{info['epsg']}" if info.get("epsg") else None
        if proj.code is None and src.crs is not None:
            proj.wkt2 = src.crs.to_wkt()
        proj.shape = info["shape"]
        proj.transform = info["transform"][:6]
        proj.bbox = info["bbox"]
        known = asset.extra_fields.get("raster:bands") or [{} for _ in range(src.count)]
        bands = []
        for index in range(src.count):
            band = RasterBand.create(
                nodata=_nodata(src.nodatavals[index]), data_type=src.dtypes[index], scale=float(src.scales[index]),
                offset=float(src.offsets[index]), unit=src.units[index] or unit, spatial_resolution=src.res[0],
            )
            extra = {k: v for k, v in known[index].items() if k in ("statistics", "histogram")}
            bands.append(RasterBand({**band.to_dict(), **extra}))
        RasterExtension.ext(asset).bands = bands


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
    props: dict[str, object] = {"title": spec.title, "geovigie:layer_kind": "vector",
                                "geovigie:features": len(collection["features"]), **spec.properties}
    if spec.description:
        props["description"] = spec.description
    if spec.style:
        props["geovigie:style"] = spec.style.as_dict()
    when = _dated(props, provenance)
    item = pystac.Item(spec.id, mapping(box(*bounds)), list(bounds), when, props, collection=RESULTS_COLLECTION)
    item.add_asset("data", pystac.Asset("./data.geojson", title=spec.title, media_type=pystac.MediaType.GEOJSON,
                                        roles=["data"]))
    for name, (path, title) in provenance.extra_assets.items():
        placed = _place(path, folder, f"{name}{Path(path).suffix}")
        media = {".gpkg": pystac.MediaType.GEOPACKAGE, ".csv": "text/csv", ".tif": pystac.MediaType.COG,
                 ".html": pystac.MediaType.HTML}.get(placed.suffix)
        item.add_asset(name, pystac.Asset(f"./{placed.name}", title=title, media_type=media, roles=["data"]))
        if placed.suffix == ".tif":
            _describe_raster(item, name, placed, None)
    _inherit(item, provenance)
    _add_processing(item, provenance, folder, getattr(store, "root", folder).parent)
    return store.upsert(item, results_collection())


def _union_bounds(geometries: Sequence[object]) -> tuple[float, float, float, float]:
    """Bounds of all geometries; the whole world when there is none (an empty pass is still a layer)."""
    import shapely

    if not geometries:
        return (-180.0, -90.0, 180.0, 90.0)
    west, south, east, north = shapely.total_bounds(list(geometries))
    return float(west), float(south), float(east), float(north)


def _add_classes(item: pystac.Item, spec: LayerSpec, folder: Path, data: Path) -> None:
    """`classification:classes` on the data asset, and the class names beside its COG (GDAL PAM sidecar)."""
    sidecar = folder / f"{data.name}.aux.xml"
    if spec.kind != "classes":
        sidecar.unlink(missing_ok=True)  # a republished layer that changed kind
        return
    write_category_names(data, [(c.value, c.name, c.color) for c in spec.classes])
    item.add_asset("class-names", pystac.Asset(f"./{sidecar.name}", title="Class names and colours (GDAL PAM)",
                                               media_type=pystac.MediaType.XML, roles=["metadata"]))
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
    names = []
    for href in provenance.inputs:
        public = _public_href(href, folder, root)
        # a link only where it leads somewhere (a URL, a file in the data directory); else the input's name
        if "://" in public or "/" in public and _exists(folder / public):
            media = pystac.MediaType.JSON if public.endswith(".json") else None
            item.add_link(pystac.Link("derived_from", public, media_type=media, title="input"))
        else:
            names.append(Path(public).name)
    if names:
        item.properties["geovigie:inputs"] = names
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
