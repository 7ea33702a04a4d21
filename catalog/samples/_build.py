"""Build the local STAC catalog of the real sample imagery shipped in `data/`."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pystac
import rasterio
from pystac.extensions.classification import Classification, ClassificationExtension
from pystac.extensions.eo import Band, EOExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import RasterBand, RasterExtension
from pystac.summaries import Summarizer
from rio_stac.stac import get_dataset_geom, get_projection_info

from geovigie.bands import canonical_s2_name, eo_band
from geovigie.classes import ClassInfo
from geovigie.errors import InputNotFoundError

GERS = "s2-l2a-theia-gers"
SLOVENIA = "s2-l1c-slovenia"
MUENSTER = "landsat-lst-muenster"
SAMPLE_COLLECTIONS = (GERS, SLOVENIA, MUENSTER)

SLOVENIA_CLOUDY = {"reference_scene_0"}
"""Scenes the source (eo-learn) describes as cloudy; no cloud mask ships for them."""

SLOVENIA_NODATA = 0
SLOVENIA_LABELS = (
    ClassInfo(value=1, name="cultivated land", color="#ffff00"),
    ClassInfo(value=2, name="forest", color="#054907"),
    ClassInfo(value=3, name="grassland", color="#ffa500"),
    ClassInfo(value=4, name="shrubland", color="#806000"),
    ClassInfo(value=8, name="artificial surface", color="#dc143c"),
)
"""The land-use nomenclature of the Slovenia labels (MKGP RABA groups via eo-learn); 0 is no data."""


def _asset(path: Path, title: str, roles: list[str], src: rasterio.DatasetReader) -> pystac.Asset:
    asset = pystac.Asset(href=str(path.resolve()), title=title, media_type=pystac.MediaType.GEOTIFF, roles=roles)
    proj = get_projection_info(src)
    ext = ProjectionExtension.ext(asset)
    ext.code = f"EPSG:{proj['epsg']}" if proj.get("epsg") else None
    ext.shape = proj["shape"]
    ext.transform = proj["transform"][:6]
    ext.bbox = proj["bbox"]
    return asset


def _raster_bands(src: rasterio.DatasetReader, scale: float = 1.0, unit: str | None = None) -> list[RasterBand]:
    return [
        RasterBand.create(nodata=src.nodata, data_type=src.dtypes[i], scale=scale, offset=0.0, unit=unit,
                          spatial_resolution=src.res[0])
        for i in range(src.count)
    ]


def _new_item(item_id: str, reference: rasterio.DatasetReader, when: datetime | None, **props: object) -> pystac.Item:
    geom = get_dataset_geom(reference, densify_pts=0, precision=6)
    item = pystac.Item(
        id=item_id, geometry=geom["footprint"], bbox=geom["bbox"], datetime=when,
        properties={k: v for k, v in props.items() if v is not None},
    )
    ProjectionExtension.add_to(item)
    RasterExtension.add_to(item)
    EOExtension.add_to(item)
    return item


def gers_items(folder: Path) -> Iterator[pystac.Item]:
    """The Theia L2A scene: one asset per band (B02…B12) plus the CLM/EDG/SAT masks."""
    for b2 in sorted(folder.glob("*_FRE_B2.tif")):
        stem = b2.name.removesuffix("_FRE_B2.tif")
        when = datetime.strptime(stem.split("_")[1], "%Y%m%d-%H%M%S-%f").replace(tzinfo=UTC)
        with rasterio.open(b2) as ref:
            item = _new_item(
                stem, ref, when, platform="sentinel-2b", constellation="sentinel-2", instruments=["msi"],
                **{"processing:level": "L2A", "geovigie:product": "theia-fre"},
            )
        for path in sorted(folder.glob(f"{stem}_FRE_*.tif")):
            band = canonical_s2_name(path.stem.rsplit("_", 1)[1])
            with rasterio.open(path) as src:
                asset = _asset(path, f"{band} flat reflectance", ["data", "reflectance"], src)
                RasterExtension.ext(asset).bands = _raster_bands(src, scale=1e-4)
            EOExtension.ext(asset).bands = [Band.create(**eo_band(band))]  # type: ignore[arg-type]
            item.add_asset(band, asset)
        cover = _theia_cloud_cover(folder / "MASKS", stem)
        if cover is not None:
            item.properties["eo:cloud_cover"] = cover
        for path in sorted((folder / "MASKS").glob(f"{stem}_*_R1.tif")):
            kind = path.stem.rsplit("_", 2)[1]
            with rasterio.open(path) as src:
                roles = ["cloud" if kind == "CLM" else "data-mask"]
                asset = _asset(path, f"Theia {kind} mask (bit field, 0 = clear)", roles, src)
                RasterExtension.ext(asset).bands = _raster_bands(src)
            item.add_asset(kind, asset)
        yield item


def _theia_cloud_cover(masks: Path, stem: str) -> float | None:
    """Percentage of the image's valid pixels (EDG = 0) that the Theia cloud mask flags (CLM != 0), as `eo:cloud_cover`
    wants it; None without the masks or without a valid pixel."""
    clm, edg = masks / f"{stem}_CLM_R1.tif", masks / f"{stem}_EDG_R1.tif"
    if not (clm.is_file() and edg.is_file()):
        return None
    with rasterio.open(clm) as cloud, rasterio.open(edg) as edge:
        valid = edge.read(1) == 0
        if not valid.any():
            return None
        return round(float((cloud.read(1)[valid] != 0).mean() * 100), 2)


def slovenia_items(folder: Path) -> Iterator[pystac.Item]:
    """Four 13-band L1C scenes (one multi-band asset each) sharing one land-use label raster."""
    labels = folder / "lulc_mask.tif"
    dates_file = folder / "acquisitions.json"
    acquisitions = json.loads(dates_file.read_text(encoding="utf-8")) if dates_file.is_file() else {}
    for path in sorted(folder.glob("reference_scene_*.tif")):
        known = acquisitions.get(path.stem, {}).get("datetime")
        # without a known date: the period of the eo-learn patch the scenes come from, and a note saying so
        dates = {"geovigie:note": "acquisition date not given by the source",
                 "start_datetime": "2015-07-11T00:00:00Z", "end_datetime": "2017-12-22T23:59:59Z"} if not known else {}
        with rasterio.open(path) as src:
            item = _new_item(
                f"slovenia-{path.stem.replace('_', '-')}", src,
                datetime.fromisoformat(known.replace("Z", "+00:00")) if known else None,
                constellation="sentinel-2", instruments=["msi"],
                **{"processing:level": "L1C", "geovigie:cloudy": path.stem in SLOVENIA_CLOUDY, **dates},
            )
            asset = _asset(path, "Sentinel-2 L1C TOA reflectance, 13 bands", ["data", "reflectance"], src)
            RasterExtension.ext(asset).bands = _raster_bands(src)
            EOExtension.ext(asset).bands = [Band.create(**eo_band(d)) for d in src.descriptions]  # type: ignore[arg-type]
        item.add_asset("data", asset)
        with rasterio.open(labels) as src:
            label_asset = _asset(labels, "Land-use labels (MKGP RABA via eo-learn)", ["labels"], src)
            RasterExtension.ext(label_asset).bands = _raster_bands(src)
        ClassificationExtension.add_to(item)
        ClassificationExtension.ext(label_asset).classes = [
            Classification.create(value=SLOVENIA_NODATA, name="no_data", description="no data", nodata=True),
            *(Classification.create(value=c.value, name=c.name.replace(" ", "_"), description=c.name,
                                    color_hint=c.color[1:].upper()) for c in SLOVENIA_LABELS),
        ]
        item.add_asset("labels", label_asset)
        yield item


def muenster_items(folder: Path) -> Iterator[pystac.Item]:
    """Landsat 8/9 land surface temperature scenes, already in °C."""
    for path in sorted(folder.glob("L*_ST_B10.TIF")):
        match = re.match(r"(L[CO]0\d)_L2SP_(\d{6})_(\d{8})_", path.name)
        if not match:
            continue
        day = datetime.strptime(match.group(3), "%Y%m%d").replace(tzinfo=UTC)
        with rasterio.open(path) as src:
            item = _new_item(
                path.stem, src, None,
                start_datetime=day.isoformat().replace("+00:00", "Z"),
                end_datetime=day.replace(hour=23, minute=59, second=59).isoformat().replace("+00:00", "Z"),
                platform={"LC08": "landsat-8", "LC09": "landsat-9"}.get(match.group(1)),
                instruments=["tirs"], **{"processing:level": "L2SP", "landsat:wrs_path_row": match.group(2)},
            )
            asset = _asset(path, "Land surface temperature (°C, from ST_B10)", ["data", "temperature"], src)
            RasterExtension.ext(asset).bands = _raster_bands(src, unit="celsius")
        item.add_asset("lst", asset)
        yield item


ETALAB = ("etalab-2.0", "https://www.etalab.gouv.fr/wp-content/uploads/2017/04/ETALAB-Licence-Ouverte-v2.0.pdf",
          "Licence Ouverte / Open Licence 2.0")
COPERNICUS = ("https://sentinels.copernicus.eu/documents/247904/690755/Sentinel_Data_Legal_Notice",
              "Legal notice on the use of Copernicus Sentinel data")
LICENCES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    GERS: (ETALAB[0], [ETALAB[1:], COPERNICUS]),
    SLOVENIA: ("other", [COPERNICUS, ("https://github.com/sentinel-hub/eo-learn/blob/master/LICENSE",
                                      "eo-learn example data: MIT licence")]),
    MUENSTER: ("other", [("https://www.usgs.gov/information-policies-and-instructions/copyrights-and-credits",
                          "USGS Landsat: public domain (copyrights and credits)")]),
}
"""Each sample collection's licence: an SPDX id, or "other", and the `license` links that state it."""

COLLECTION_SPECS: dict[str, tuple[str, str, str, Callable[[Path], Iterator[pystac.Item]]]] = {
    GERS: ("s2-l2a-theia-gers", "Sentinel-2B L2A (Theia/MAJA), Gers, France",
           "Contains modified Copernicus Sentinel data processed by Theia/MAJA; Etalab Open Licence", gers_items),
    SLOVENIA: ("s2-l1c-slovenia", "Sentinel-2 L1C with land-use labels, Slovenia (eo-learn)",
               "Contains modified Copernicus Sentinel data; eo-learn example data, MIT", slovenia_items),
    MUENSTER: ("landsat-lst-muenster", "Landsat 8/9 land surface temperature (°C), Münster",
               "USGS Landsat, public domain; prepared by R. T. Gummels, MIT", muenster_items),
}


def _keep_other_collections(catalog_dir: Path, new_dir: Path) -> None:
    """Carry the collections of an existing catalog that are not sample collections (ingested orthophotos,
    fetched imagery) into the new catalog folder, hard-linking their files (no copy of large rasters)."""
    old_root = catalog_dir / "catalog.json"
    if not old_root.is_file():
        return
    new_root = new_dir / "catalog.json"
    document = json.loads(new_root.read_text(encoding="utf-8"))
    for link in json.loads(old_root.read_text(encoding="utf-8")).get("links", []):
        href = Path(str(link.get("href", "")))
        folder = href.parent.name
        if link.get("rel") != "child" or href.is_absolute() or not folder or folder in COLLECTION_SPECS:
            continue
        if not (catalog_dir / href).is_file() or (new_dir / folder).exists():
            continue
        shutil.copytree(catalog_dir / folder, new_dir / folder, copy_function=os.link)
        document["links"].append({"rel": "child", "href": f"./{folder}/{href.name}", "type": "application/json"})
    new_root.write_text(json.dumps(document, indent=2), encoding="utf-8")


def build_sample_catalog(sample_dir: Path, catalog_dir: Path) -> pystac.Catalog:
    """Write a self-contained STAC catalog of the sample data to `catalog_dir` (replaced atomically).

    Collections already in `catalog_dir` that are not sample collections (ingested orthophotos, fetched imagery)
    are kept.

    Raises:
        InputNotFoundError: when a sample folder is missing.
    """
    catalog_dir = Path(catalog_dir).resolve()
    catalog = pystac.Catalog(id="geovigie-inputs", description="Imagery available to geovigie")
    for collection_id, (folder, title, licence_note, make_items) in COLLECTION_SPECS.items():
        source = sample_dir / folder
        if not source.is_dir():
            raise InputNotFoundError(f"sample data folder missing: {source}")
        items = list(make_items(source))
        licence, links = LICENCES[collection_id]
        collection = pystac.Collection(
            id=collection_id, title=title, description=f"{title}. {licence_note}.",
            extent=pystac.Extent.from_items(items), license=licence,
            summaries=Summarizer().summarize(items),
        )
        for href, text in links:
            collection.add_link(pystac.Link("license", href, media_type="text/html" if not href.endswith(".pdf")
                                            else "application/pdf", title=text))
        collection.add_items(items)
        catalog.add_child(collection)
    catalog_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".catalog.", dir=catalog_dir.parent))
    try:
        catalog.normalize_and_save(f"{tmp}/", catalog_type=pystac.CatalogType.SELF_CONTAINED)
        _keep_other_collections(catalog_dir, tmp)
        old = catalog_dir.with_name(f".{catalog_dir.name}.old")
        if catalog_dir.exists():
            catalog_dir.rename(old)
        tmp.rename(catalog_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return pystac.Catalog.from_file(str(catalog_dir / "catalog.json"))
