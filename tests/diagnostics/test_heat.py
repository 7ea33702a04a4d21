from pathlib import Path

import numpy as np
import pytest
import rasterio

from geovigie.catalog.stac import CatalogClient
from geovigie.diagnostics import temperature_layer
from geovigie.diagnostics._heat import _to_celsius
from geovigie.errors import InvalidRasterError


def test_temperature_layer_keeps_celsius_values(catalog_dir: Path, tmp_path: Path) -> None:
    items = CatalogClient.open(catalog_dir).search(collections=["landsat-lst-muenster"], datetime="2024").item_list()
    stats = temperature_layer(items[0], tmp_path / "lst.tif")
    with rasterio.open(items[0].assets["lst"].href) as src:
        source = src.read(1, masked=True)
    with rasterio.open(stats.path) as src:
        out = src.read(1, masked=True)
    assert np.array_equal(out.mask, source.mask)
    assert np.allclose(out.compressed(), source.compressed())
    assert stats.valid_pixels == source.count()
    assert 20 < stats.p02 < stats.mean < stats.p98 < 60  # an August afternoon in Münster


def test_unit_conversion() -> None:
    dn = np.ma.masked_array(np.array([[44000]], dtype=np.uint16))
    celsius = _to_celsius(dn, None, "uint16")
    assert celsius[0, 0] == pytest.approx(44000 * 0.00341802 + 149.0 - 273.15, abs=1e-3)
    assert _to_celsius(np.ma.masked_array(np.array([[300.0]])), "kelvin", "float32")[0, 0] == pytest.approx(26.85)
    with pytest.raises(InvalidRasterError, match="unit"):
        _to_celsius(np.ma.masked_array(np.array([[1.0]])), None, "float32")
