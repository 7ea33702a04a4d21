from pathlib import Path

import numpy as np
import rasterio
from rio_cogeo.cogeo import cog_validate

from geovigie.catalog.stac import CatalogClient
from geovigie.diagnostics import ndvi_layer
from geovigie.diagnostics._vegetation import NDVI_NODATA


def test_ndvi_masks_clouds_and_matches_a_direct_computation(catalog_dir: Path, tmp_path: Path) -> None:
    item = CatalogClient.open(catalog_dir).search(collections=["s2-l2a-theia-gers"]).item_list()[0]
    # in the source grid (UTM 30N) the result can be checked pixel by pixel
    with rasterio.open(item.assets["B04"].href) as src:
        red, crs, res = src.read(1).astype(float), src.crs.to_string(), src.res[0]
    with rasterio.open(item.assets["B08"].href) as src:
        nir = src.read(1).astype(float)
    with rasterio.open(item.assets["CLM"].href) as src:
        cloud = src.read(1) != 0
    summary = ndvi_layer([item], tmp_path / "ndvi.tif", crs=crs, resolution=res)
    assert cog_validate(str(summary.path))[0]
    with rasterio.open(summary.path) as src:
        ndvi = src.read(1)
        assert src.nodata == NDVI_NODATA
    assert ndvi.shape == red.shape
    assert cloud.sum() > 1000
    assert (ndvi[cloud] == NDVI_NODATA).all()
    expected = (nir - red) / (nir + red)
    clear = ~cloud
    assert np.allclose(ndvi[clear], expected[clear], atol=1e-5)
    assert summary.clear_pixels == clear.sum()
    assert 0.3 < summary.mean_ndvi < 0.9  # October farmland and woods


def test_ndvi_on_lambert93(catalog_dir: Path, tmp_path: Path) -> None:
    item = CatalogClient.open(catalog_dir).search(collections=["s2-l2a-theia-gers"]).item_list()[0]
    summary = ndvi_layer([item], tmp_path / "ndvi.tif")
    with rasterio.open(summary.path) as src:
        assert src.crs.to_epsg() == 2154
        assert src.res == (10.0, 10.0)
        ndvi = src.read(1, masked=True)
    assert ndvi.min() >= -1 and ndvi.max() <= 1
