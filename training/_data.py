"""Labelled scenes of an experiment: imagery (raster files or STAC items) and labels on each image's grid."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio

from geovigie.bands import canonical_s2_name
from geovigie.errors import EmptySearchError, InputNotFoundError, InvalidRasterError
from geovigie.training._config import ExperimentConfig
from geovigie.training._feedback import prepare_records, records_on_grid
from geovigie.training._labels import Grid, LabelError, Mapping, raster_labels, read_vectors, source_key, vector_labels
from geovigie.training._targets import IGNORE


@dataclass
class Scene:
    """One image in memory: raw values (bands, H, W) float32, valid pixels, class labels (IGNORE = none)."""

    name: str
    date: str
    area: str
    image: np.ndarray
    valid: np.ndarray
    labels: np.ndarray
    grid: Grid
    files: list[str] = field(default_factory=list)
    acquired: str = ""
    """Acquisition date and time (ISO 8601), when known: orders the passes of an area."""


@dataclass(frozen=True)
class ImageSource:
    """Where one image comes from before it is read."""

    name: str
    files: list[Path]
    date: str
    area: str
    labels: Path | None
    bands: list[str] | None
    acquired: str = ""


def mapping_of(config: ExperimentConfig) -> Mapping:
    """The config's class mapping."""
    to_class = {source_key(s): index for index, spec in enumerate(config.classes) for s in spec.sources}
    unlabelled = IGNORE if config.labels.unlabelled == "ignore" else config.class_names.index(config.labels.unlabelled)
    return Mapping(to_class, frozenset(source_key(v) for v in config.labels.ignore_values), unlabelled,
                   config.class_names)


def image_sources(config: ExperimentConfig) -> list[ImageSource]:
    """The images the config names, files first then STAC items, with their date and area labels."""
    sources = []
    default_labels = config.resolve(config.labels.path) if config.labels.path else None
    for entry in config.images.files:
        files = [config.resolve(f) for f in entry.files]
        name = files[0].stem if len(files) == 1 else f"{files[0].stem}+{len(files) - 1}"
        labels = config.resolve(entry.labels) if entry.labels else default_labels
        sources.append(ImageSource(name, files, entry.date or name, entry.area or "area", labels, None,
                                   entry.acquired))
    if config.images.stac is not None:
        sources += _stac_sources(config, default_labels)
    return sources


def _stac_sources(config: ExperimentConfig, default_labels: Path | None) -> list[ImageSource]:
    from geovigie.catalog.stac import CatalogClient

    stac = config.images.stac
    assert stac is not None
    location = stac.catalog if stac.catalog.startswith(("http://", "https://")) else config.resolve(stac.catalog)
    items = {i.id: i for i in CatalogClient.open(location).search(collections=[stac.collection],
                                                                  max_items=None).item_list()}
    missing = [i for i in stac.ids if i not in items]
    if missing:
        raise EmptySearchError(f"items {missing} not in collection {stac.collection!r} of {stac.catalog}")
    sources = []
    for item_id in stac.ids:
        item = items[item_id]
        if stac.asset not in item.assets:
            raise InputNotFoundError(f"item {item_id} has no asset {stac.asset!r} (assets: {sorted(item.assets)})")
        asset = item.assets[stac.asset]
        labels = default_labels
        if stac.label_asset:
            if stac.label_asset not in item.assets:
                raise InputNotFoundError(f"item {item_id} has no label asset {stac.label_asset!r}")
            labels = Path(item.assets[stac.label_asset].get_absolute_href() or "")
        bands = [b["name"] for b in asset.extra_fields.get("eo:bands", [])] or None
        when = item.datetime.date().isoformat() if item.datetime else item_id
        sources.append(ImageSource(item_id, [Path(asset.get_absolute_href() or "")], when, stac.area or "area", labels,
                                   bands, item.datetime.isoformat() if item.datetime else ""))
    return sources


def read_image(source: ImageSource) -> tuple[np.ndarray, np.ndarray, Grid, list[str]]:
    """Raw float32 (bands, H, W), valid mask, grid and band descriptions of one image (its files stacked)."""
    bands: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    names: list[str] = []
    grid: Grid | None = None
    for path in source.files:
        if not path.is_file():
            raise InputNotFoundError(f"no image at {path}")
        with rasterio.open(path) as src:
            if src.crs is None:
                raise InvalidRasterError(f"{path}: raster has no CRS; labels cannot be placed on it")
            here = Grid(src.crs, src.transform, src.height, src.width)
            if grid is not None and (here.crs != grid.crs or here.transform != grid.transform
                                     or (here.height, here.width) != (grid.height, grid.width)):
                raise InvalidRasterError(f"{path}: not on the grid of {source.files[0]} (CRS, transform or size "
                                         "differ); resample the bands to one grid first")
            grid = here
            data = src.read().astype(np.float32)
            ok = np.isfinite(data)
            if src.nodata is not None:
                ok &= data != np.float32(src.nodata)
            bands.append(data)
            masks.append(ok.all(axis=0))
            names += [d or f"band{len(names) + i + 1}" for i, d in enumerate(src.descriptions)]
    assert grid is not None
    image = np.concatenate(bands, axis=0)
    valid = np.logical_and.reduce(masks)
    if not valid.any():
        raise InvalidRasterError(f"{source.files[0]}: no valid pixel (all nodata)")
    return image, valid, grid, source.bands or names


def load_scenes(config: ExperimentConfig) -> tuple[list[Scene], list[str]]:
    """Every image with its labels on its grid; the band names (config, STAC eo:bands or raster descriptions)."""
    mapping = mapping_of(config)
    scenes: list[Scene] = []
    band_names: list[str] | None = None
    vectors: dict[Path, object] = {}
    for source in image_sources(config):
        image, valid, grid, names = read_image(source)
        names = config.images.bands or names
        if len(names) != image.shape[0]:
            raise InvalidRasterError(f"{source.files[0]}: {image.shape[0]} bands but {len(names)} band names given")
        if band_names is None:
            band_names = names
        elif [canonical_s2_name(n) for n in names] != [canonical_s2_name(n) for n in band_names]:
            raise InvalidRasterError(f"{source.files[0]}: bands {names} differ from the first image's {band_names}")
        labels = _labels_for(config, source, grid, mapping, vectors)
        labels[~valid] = IGNORE
        fill = np.nanmean(np.where(valid, image, np.nan).reshape(image.shape[0], -1), axis=1)
        image = np.where(valid[None], image, fill[:, None, None]).astype(np.float32)
        scenes.append(Scene(source.name, source.date, source.area, image, valid, labels, grid,
                            [str(f) for f in source.files], source.acquired))
    if not scenes:
        raise EmptySearchError("the config names no image")
    if config.labels.source == "field-validation" and all((s.labels == mapping.unlabelled).all() for s in scenes):
        raise LabelError(f"{config.labels.path or 'labels'}: no field record lies on the images (each site's latest "
                         "record, after labels.buffer_m); check the feedback export and the images' place and CRS")
    assert band_names is not None
    return scenes, band_names


def _labels_for(config: ExperimentConfig, source: ImageSource, grid: Grid, mapping: Mapping,
                cache: dict[Path, object]) -> np.ndarray:
    if source.labels is None:
        raise LabelError(f"no labels for {source.name}: set labels.path (or images.stac.label_asset)")
    spec = config.labels
    if spec.source == "raster":
        return raster_labels(source.labels, spec.band, grid, mapping)
    attribute = "status" if spec.source == "field-validation" else spec.attribute
    if attribute is None:
        raise LabelError("labels.source = 'vector' needs labels.attribute (the class attribute of the features)")
    field = spec.source == "field-validation"
    if source.labels not in cache:
        frame = read_vectors(source.labels, spec.layer, attribute, field_validation=field)
        cache[source.labels] = prepare_records(frame, config, mapping, str(source.labels)) if field else frame
    frame = cache[source.labels]
    if field:  # feedback sites as polygons on this grid, buffered (training/_feedback.py)
        frame = records_on_grid(frame, grid, spec.point_radius_m, spec.buffer_m, str(source.labels))
        if frame.empty:  # no site visited on this image: all unlabelled, not an error
            return np.full((grid.height, grid.width), mapping.unlabelled, dtype=np.uint8)
    return vector_labels(frame, attribute, grid, mapping, spec.point_radius_m, str(source.labels))
