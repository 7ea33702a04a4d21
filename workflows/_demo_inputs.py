"""Inputs the demo builds from the shipped sample data, each named for what it is.

No labelled dump imagery exists offline, so the dump-site demo runs on stand-ins: above-ground objects of the IGN
LiDAR HD height model (Montpellier) for volumes, and mineral surfaces of IGN's 2016 / 2019 land-cover labels
(Gers) for tracking between two passes. Every output built from them is marked as candidates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.merge import merge

from geovigie.cog import write_array_cog
from geovigie.errors import InputNotFoundError
from geovigie.types import NODATA_CLASS, PROBA_SCALE

LIDAR = "lidarhd-montpellier-ign"
HEIGHT_FOR_FULL_CONFIDENCE_M = 10.0


def lidar_models(sample_dir: Path, out_dir: Path, name: str = LIDAR) -> tuple[Path, Path, Path]:
    """Mosaic the shipped LiDAR HD tiles of `name` (a folder of `sample_dir` with DSM/ and DTM/ GeoTIFFs) into DSM
    and DTM COGs, plus a stand-in candidate layer.

    The stand-in is a probability-like uint8 layer (value / 250) of height above ground, 250 at 10 m and more:
    it finds buildings and trees, not dumps, and exists to show the volume mechanics on real elevation data.

    Returns:
        (dsm, dtm, stand-in layer) paths.
    """
    folders = {kind: sample_dir / name / kind for kind in ("DSM", "DTM")}
    for folder in folders.values():
        if not any(folder.glob("*.tif")):
            raise InputNotFoundError(f"no LiDAR HD tiles in {folder}")
    out: dict[str, Path] = {}
    arrays: dict[str, np.ndarray] = {}
    for kind, folder in folders.items():
        tiles = sorted(folder.glob("*.tif"))
        with rasterio.open(tiles[0]) as first:
            crs, nodata = first.crs, first.nodata
        mosaic, transform = merge(tiles, nodata=nodata)
        arrays[kind] = mosaic[0]
        profile = {"driver": "GTiff", "crs": crs, "transform": transform, "nodata": nodata}
        out[kind] = write_array_cog(out_dir / f"montpellier-{kind.lower()}.tif", mosaic.astype("float32"),
                                    profile=profile, band_descriptions=[f"{kind} IGN69 m"],
                                    overview_resampling="average")
    valid = (arrays["DSM"] != nodata) & (arrays["DTM"] != nodata)
    height = np.where(valid, arrays["DSM"] - arrays["DTM"], 0.0)
    scaled = np.clip(np.rint(height / HEIGHT_FOR_FULL_CONFIDENCE_M * PROBA_SCALE), 0, PROBA_SCALE)
    layer = np.where(valid, scaled, NODATA_CLASS).astype(np.uint8)[None]
    standin = write_array_cog(out_dir / "montpellier-standin-candidates.tif", layer,
                              profile={"driver": "GTiff", "crs": crs, "transform": transform, "nodata": NODATA_CLASS},
                              band_descriptions=["stand-in: height above ground / 10 m (not a dump detector)"],
                              tags={"GEOVIGIE_STANDIN": "LiDAR HD height above ground; not a dump model output"})
    return out["DSM"], out["DTM"], standin


ODEON = "odeon-change-labels-2016-2019"


def odeon_mosaics(sample_dir: Path, out_dir: Path, nomenclature: str = "naf") -> tuple[Path, Path, Path]:
    """Mosaic the two shipped IGN odeon label patches of 2016 and of 2019 (same 0.25 m grid) into one class map each,
    and write the patches' footprints as zones (GeoJSON, EPSG:2154, zone_id = the patch's northing).

    Returns:
        (2016 map, 2019 map, zones file).
    """
    import geopandas as gpd
    from shapely.geometry import box

    from geovigie.diagnostics import write_vector

    maps = []
    for year in ("2016", "2019"):
        tiles = sorted((sample_dir / ODEON / year / nomenclature).glob("*.tiff"))
        if not tiles:
            raise InputNotFoundError(f"no odeon label patches in {sample_dir / ODEON / year / nomenclature}")
        mosaic, transform = merge(tiles, nodata=0)
        with rasterio.open(tiles[0]) as first:
            crs = first.crs
        maps.append(write_array_cog(out_dir / f"odeon-{nomenclature}-{year}.tif", mosaic.astype(np.uint8),
                                    profile={"driver": "GTiff", "crs": crs, "transform": transform},
                                    band_descriptions=[f"IGN odeon {nomenclature} labels {year}"]))
    rows = []
    for tile in tiles:
        with rasterio.open(tile) as src:
            northing = tile.stem.split("_")[3].split("-")[0]
            rows.append({"zone_id": northing, "zone_name": f"odeon patch {northing}", "geometry": box(*src.bounds)})
    zones = write_vector(gpd.GeoDataFrame(rows, geometry="geometry", crs=crs), out_dir / "odeon-patches.geojson")
    return maps[0], maps[1], zones
