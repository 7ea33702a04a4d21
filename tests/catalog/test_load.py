from pathlib import Path

import dask.array as da
import numpy as np
import rasterio

from geovigie.catalog.imagery import load_items
from geovigie.catalog.stac import CatalogClient


def test_lazy_load_matches_the_files(catalog_dir: Path) -> None:
    item = CatalogClient.open(catalog_dir).search(collections=["s2-l2a-theia-gers"]).item_list()[0]
    ds = load_items([item], ["B04", "B11"], chunks={"x": 256, "y": 256})
    assert isinstance(ds["B04"].data, da.Array)  # nothing read yet
    assert ds["B04"].data.chunksize[-2:] == (256, 256)
    red = ds["B04"].isel(time=0).values
    with rasterio.open(item.assets["B04"].href) as src:
        assert (red == src.read(1)).all()
    # the 20 m band is resampled onto the 10 m grid (nearest): each source pixel covers 2 x 2 target pixels
    swir = ds["B11"].isel(time=0).values
    with rasterio.open(item.assets["B11"].href) as src:
        assert np.array_equal(swir[::2, ::2], src.read(1))


def test_load_onto_lambert93(catalog_dir: Path) -> None:
    item = CatalogClient.open(catalog_dir).search(collections=["s2-l2a-theia-gers"]).item_list()[0]
    ds = load_items([item], ["B08"], crs="EPSG:2154", resolution=20)
    assert ds.odc.geobox.crs.epsg == 2154
    assert abs(ds.odc.geobox.resolution.x) == 20
    x0 = float(ds.x.min())
    assert 450_000 < x0 < 480_000  # Gers in Lambert-93 metres
