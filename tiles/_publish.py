"""Publish layers: each COG gets a STAC item (proj, raster, classification, processing, render) in the
results collection, pointing to the model bundle and the inputs that made it."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pystac
from pystac.extensions.classification import Classification, ClassificationExtension
from pystac.extensions.processing import ProcessingExtension
from pystac.extensions.raster import RasterExtension
from pystac.extensions.render import Render, RenderExtension
from rio_stac import create_stac_item

import geovigie
from geovigie.atomic import atomic_path
from geovigie.tiles._stacio import AtomicStacIO

RESULTS_COLLECTION = "geovigie-results"


@dataclass(frozen=True)
class LayerClass:
    """A class of a class-map layer."""

    value: int
    name: str
    color: str  # "#rrggbb"


@dataclass(frozen=True)
class LayerSpec:
    """What a layer is and how to draw it.

    `kind` is "classes" (uint8 class map, its palette embedded) or "continuous" (one float band,
    drawn with `rescale` and `colormap_name`, values in `unit`).
    """

    id: str
    title: str
    kind: str
    classes: Sequence[LayerClass] = ()
    rescale: tuple[float, float] | None = None
    colormap_name: str | None = None
    unit: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Provenance:
    """Where a layer comes from: input STAC items, the model bundle (if any) and the processing."""

    inputs: Sequence[str]
    lineage: str
    bundle_card: str | None = None
    bundle_id: str | None = None
    datetime: datetime | None = None
    start_datetime: datetime | None = None
    end_datetime: datetime | None = None
    extra_assets: dict[str, tuple[Path, str]] = field(default_factory=dict)


def _load_results(results_dir: Path) -> tuple[pystac.Catalog, pystac.Collection]:
    root = results_dir / "catalog.json"
    if root.exists():
        catalog = pystac.Catalog.from_file(str(root), stac_io=AtomicStacIO())
        collection = catalog.get_child(RESULTS_COLLECTION)
        if isinstance(collection, pystac.Collection):
            return catalog, collection
    catalog = pystac.Catalog(id="geovigie-results", description="Layers published by geovigie")
    collection = pystac.Collection(
        id=RESULTS_COLLECTION,
        description="Map layers computed by geovigie: land cover, vegetation, temperature.",
        extent=pystac.Extent(pystac.SpatialExtent([[-180, -90, 180, 90]]),
                             pystac.TemporalExtent([[datetime.now(UTC), None]])),
        license="other",
    )
    catalog.add_child(collection)
    return catalog, collection


def _place(src: Path, folder: Path, name: str) -> Path:
    """Copy `src` into the layer's folder atomically (the producer keeps its own file, e.g. for reruns)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if src.resolve() != target.resolve():
        with atomic_path(target) as tmp:
            shutil.copyfile(src, tmp)
    return target


def layer_folder(results_dir: Path, layer_id: str) -> Path:
    """The folder of a layer's item and files."""
    return results_dir / RESULTS_COLLECTION / layer_id


def publish_layer(results_dir: str | Path, cog: str | Path, spec: LayerSpec, provenance: Provenance) -> pystac.Item:
    """Move `cog` into the results catalog and write (or replace) the layer's STAC item.

    Returns:
        the saved item; `item.validate()` works offline (see `tiles.use_offline_validation`).
    """
    results_dir = Path(results_dir).resolve()
    folder = layer_folder(results_dir, spec.id)
    data = _place(Path(cog), folder, "data.tif")
    when = provenance.datetime or (None if provenance.start_datetime else datetime.now(UTC))
    props: dict[str, object] = {"title": spec.title, "geovigie:layer_kind": spec.kind}
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
        placed = _place(path, folder, f"{name}.tif")
        item.add_asset(name, pystac.Asset(f"./{placed.name}", title=title, media_type=pystac.MediaType.COG,
                                          roles=["data"]))
    _add_classes(item, spec)
    _add_processing(item, provenance)
    _add_render(item, spec)
    if spec.unit:
        for band in RasterExtension.ext(item.assets["data"]).bands or []:
            band.unit = spec.unit

    catalog, collection = _load_results(results_dir)
    if collection.get_item(spec.id) is not None:
        collection.remove_item(spec.id)
    collection.add_item(item)
    collection.update_extent_from_items()
    catalog.normalize_and_save(f"{results_dir}/", catalog_type=pystac.CatalogType.SELF_CONTAINED,
                               stac_io=AtomicStacIO())
    return item


def _add_classes(item: pystac.Item, spec: LayerSpec) -> None:
    if spec.kind != "classes":
        return
    ClassificationExtension.add_to(item)
    classes = [
        Classification.create(value=c.value, name=c.name.replace(" ", "_"), description=c.name,
                              color_hint=c.color.lstrip("#").upper())
        for c in spec.classes
    ]
    classes.append(Classification.create(value=255, name="nodata", description="no data", nodata=True))
    ClassificationExtension.ext(item.assets["data"]).classes = classes


def _add_processing(item: pystac.Item, provenance: Provenance) -> None:
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
        item.add_link(pystac.Link("derived_from", href, media_type=pystac.MediaType.JSON, title="input"))
    if provenance.bundle_card:
        item.add_link(pystac.Link("via", provenance.bundle_card, media_type=pystac.MediaType.JSON,
                                  title=f"model bundle card {provenance.bundle_id}"))


def _add_render(item: pystac.Item, spec: LayerSpec) -> None:
    RenderExtension.add_to(item)
    if spec.kind == "classes":
        render = Render.create(assets=["data"], title=spec.title, resampling="nearest")
    else:
        render = Render.create(assets=["data"], title=spec.title, rescale=[list(spec.rescale or (0, 1))],
                               colormap_name=spec.colormap_name or "viridis", resampling="bilinear")
    RenderExtension.ext(item).apply({"default": render})
