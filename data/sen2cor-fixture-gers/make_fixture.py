"""Build a small Sen2Cor-layout fixture from the shipped Theia Gers scene (see README.md beside this file).

    python data/sen2cor-fixture-gers/make_fixture.py

Reads only `data/s2-l2a-theia-gers/`; writes the GeoTIFFs and `item.json` here. Deterministic.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window

HERE = Path(__file__).resolve().parent
THEIA = HERE.parent / "s2-l2a-theia-gers"
STEM = "SENTINEL2B_20181023-105107-455_L2A_T30TYP_D_V1-9"
ROW, COL, SIZE = 240, 120, 200
"""Crop at 10 m: rows 240-439, cols 120-319 of the shipped 800 × 800 window (holds the scene's cumulus)."""
BANDS = {"B02": ("blue", 10), "B03": ("green", 10), "B04": ("red", 10), "B08": ("nir", 10)}
OFFSET_DN = 1000
"""Baseline 04.00+: DN = reflectance × 10000 − BOA_ADD_OFFSET (−1000)."""
NDVI_VEGETATION = 0.4


def _window(resolution: int) -> Window:
    factor = resolution // 10
    return Window(COL // factor, ROW // factor, SIZE // factor, SIZE // factor)


def _write(path: Path, array: np.ndarray, profile: dict, transform: object) -> None:
    meta = {**profile, "driver": "GTiff", "height": array.shape[0], "width": array.shape[1], "count": 1,
            "dtype": array.dtype.name, "nodata": 0, "transform": transform, "compress": "deflate",
            "predictor": 2, "tiled": False}
    meta.pop("blockxsize", None), meta.pop("blockysize", None), meta.pop("interleave", None)
    with rasterio.open(path, "w", **meta) as dst:
        dst.write(array, 1)


def scl_from_theia(clm: np.ndarray, edg: np.ndarray, sat: np.ndarray, ndvi: np.ndarray) -> np.ndarray:
    """SCL at 20 m from the 10 m Theia masks, 2 × 2 blocks, highest priority first:
    0 no data (EDG), 1 saturated (SAT), 9 cloud (CLM bits 1-3), 10 thin cirrus (CLM bits 4, 7),
    3 cloud shadow (CLM bits 5, 6); clear blocks: 4 vegetation if the block's mean NDVI ≥ 0.4, else 5."""
    def blocks(a: np.ndarray) -> np.ndarray:
        h, w = a.shape
        return a.reshape(h // 2, 2, w // 2, 2).swapaxes(1, 2).reshape(h // 2, w // 2, 4)

    def any_bits(mask: np.ndarray, bits: int) -> np.ndarray:
        return (blocks(mask.astype(np.uint16)) & bits).any(axis=-1)

    scl = np.where(blocks(ndvi).mean(axis=-1) >= NDVI_VEGETATION, 4, 5).astype(np.uint8)
    scl[any_bits(clm, (1 << 5) | (1 << 6))] = 3
    scl[any_bits(clm, (1 << 4) | (1 << 7))] = 10
    scl[any_bits(clm, (1 << 1) | (1 << 2) | (1 << 3))] = 9
    scl[any_bits(sat, 0xFF)] = 1
    scl[any_bits(edg, 0xFF)] = 0
    return scl


def main() -> None:
    assets: dict[str, dict] = {}
    fre: dict[str, np.ndarray] = {}
    for band, (common, res) in BANDS.items():
        source = THEIA / f"{STEM}_FRE_{band.replace('B0', 'B')}.tif"
        with rasterio.open(source) as src:
            window = _window(res)
            data = src.read(1, window=window)
            profile, transform = src.profile, src.window_transform(window)
        fre[band] = data
        if (data < -OFFSET_DN).any() or data.max() > 65535 - OFFSET_DN:
            raise SystemExit(f"{source}: values outside what uint16 DNs with the offset can hold")
        name = f"T30TYP_20181023T105107_{band}_{res}m.tif"
        _write(HERE / name, (data.astype(np.int32) + OFFSET_DN).astype(np.uint16), profile, transform)
        assets[band] = _asset(name, f"{band} ({common}) BOA reflectance DN, baseline 05.10 (+1000 offset)",
                              ["data", "reflectance"], transform, data.shape, res,
                              {"eo:bands": [{"name": band, "common_name": common}]}, "uint16")
    masks = {}
    for kind in ("CLM", "EDG", "SAT"):
        with rasterio.open(THEIA / "MASKS" / f"{STEM}_{kind}_R1.tif") as src:
            masks[kind] = src.read(1, window=_window(10))
    red, nir = fre["B04"].astype(float), fre["B08"].astype(float)
    ndvi = (nir - red) / np.maximum(nir + red, 1)
    scl = scl_from_theia(masks["CLM"], masks["EDG"], masks["SAT"], ndvi)
    with rasterio.open(HERE / "T30TYP_20181023T105107_B04_10m.tif") as ref:  # 20 m on the 10 m grid's origin
        profile20, transform20 = ref.profile, ref.transform * Affine.scale(2)
    _write(HERE / "T30TYP_20181023T105107_SCL_20m.tif", scl, profile20, transform20)
    assets["SCL"] = _asset("T30TYP_20181023T105107_SCL_20m.tif", "Scene classification (derived from Theia CLM)",
                           ["data-mask"], transform20, scl.shape, 20, {}, "uint8")
    cloudy = float(np.isin(scl, [3, 8, 9, 10]).mean() * 100)
    with rasterio.open(HERE / "T30TYP_20181023T105107_B02_10m.tif") as ref:
        from rasterio.warp import transform_bounds
        west, south, east, north = transform_bounds(ref.crs, "EPSG:4326", *ref.bounds, densify_pts=21)
    item = {
        "type": "Feature", "stac_version": "1.1.0", "id": "sen2cor-fixture-gers-20181023",
        "stac_extensions": ["https://stac-extensions.github.io/eo/v1.1.0/schema.json",
                            "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
                            "https://stac-extensions.github.io/raster/v1.1.0/schema.json"],
        "geometry": {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north],
                                                         [west, north], [west, south]]]},
        "bbox": [west, south, east, north],
        "properties": {"datetime": "2018-10-23T10:51:07.455000Z", "platform": "sentinel-2b",
                       "constellation": "sentinel-2", "instruments": ["msi"], "processing:level": "L2A",
                       "s2:processing_baseline": "05.10", "s2:mgrs_tile": "30TYP",
                       "eo:cloud_cover": round(cloudy, 2), "proj:code": "EPSG:32630",
                       "geovigie:note": "TEST FIXTURE: Sen2Cor layout built from Theia FRE data, see README.md"},
        "links": [], "assets": assets,
    }
    (HERE / "item.json").write_text(json.dumps(item, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(assets)} assets, eo:cloud_cover {cloudy:.2f} %, SCL values {np.unique(scl).tolist()}")


def _asset(href: str, title: str, roles: list[str], transform: object, shape: tuple[int, ...], res: int,
           extra: dict, dtype: str) -> dict:
    return {"href": f"./{href}", "type": "image/tiff; application=geotiff", "title": title, "roles": roles,
            "proj:code": "EPSG:32630", "proj:shape": list(shape), "proj:transform": list(transform)[:6],
            "raster:bands": [{"nodata": 0, "data_type": dtype, "spatial_resolution": res}], **extra}


if __name__ == "__main__":
    main()
