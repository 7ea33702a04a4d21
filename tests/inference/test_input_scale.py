"""Digital numbers (uint16, reflectance × 10000) predicted by a reflectance model through `input_scale`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from geovigie.errors import ValueRangeError
from geovigie.inference import PredictOptions, predict
from tests.conftest import SLOVENIA_SCENE


@pytest.fixture(scope="module")
def dn_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real scene as Sentinel-2 L1C products store it: uint16 DN, 0 = nodata, tiled, deflate."""
    path = tmp_path_factory.mktemp("dn") / "scene_dn.tif"
    with rasterio.open(SLOVENIA_SCENE) as src:
        profile, data, names = src.profile, src.read(), src.descriptions
    profile.update(dtype="uint16", nodata=0, predictor=2)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.rint(data * 10000).astype("uint16"))
        dst.descriptions = names
    return path


def _classes(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def test_scaled_digital_numbers_predict_like_reflectance(dn_scene: Path, dask_client, tmp_path: Path) -> None:
    options = PredictOptions(64, 16, 4, "cpu", input_scale=1e-4)
    from_dn = predict(dn_scene, tmp_path / "dn", options, client=dask_client, progress=False, product_level="L1C")
    from_reflectance = predict(SLOVENIA_SCENE, tmp_path / "r", PredictOptions(64, 16, 4, "cpu"), client=dask_client,
                               progress=False, product_level="L1C")
    # DN × 1e-4 in float32 differs from the stored reflectance by at most one ulp on a third of the values
    assert (_classes(from_dn.classes_path) == _classes(from_reflectance.classes_path)).mean() > 0.995
    again = predict(dn_scene, tmp_path / "dn", options, client=dask_client, progress=False, product_level="L1C")
    assert again.skipped
    shifted = PredictOptions(64, 16, 4, "cpu", input_scale=1e-4, input_offset=1e-3)
    assert not predict(dn_scene, tmp_path / "dn", shifted, client=dask_client, progress=False,
                       product_level="L1C").skipped


def test_range_check_sees_the_scaled_values(dn_scene: Path, dask_client, tmp_path: Path) -> None:
    with pytest.raises(ValueRangeError, match=r"digital numbers.*input scale 0\.0001"):
        predict(dn_scene, tmp_path, PredictOptions(64, 16, 4, "cpu"), client=dask_client, progress=False,
                product_level="L1C")
    with pytest.raises(ValueRangeError, match=r"out of range \(uint16 scaled as asked.*scale by 1/100 "):
        predict(dn_scene, tmp_path, PredictOptions(64, 16, 4, "cpu", input_scale=1e-2), client=dask_client,
                progress=False, product_level="L1C")
    assert not tmp_path.exists() or not any(tmp_path.glob("*.tif"))


def test_nodata_zero_in_digital_numbers_stays_nodata(dn_scene: Path, dask_client, tmp_path: Path) -> None:
    holed = tmp_path / "holed.tif"
    with rasterio.open(dn_scene) as src:
        profile, data, names = src.profile, src.read(), src.descriptions
    data[:, 5:25, 10:40] = 0
    with rasterio.open(holed, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = names
    result = predict(holed, tmp_path / "out", PredictOptions(64, 16, 4, "cpu", input_scale=1e-4),
                     client=dask_client, progress=False, product_level="L1C")
    classes = _classes(result.classes_path)
    assert (classes[5:25, 10:40] == 255).all() and (classes[30:] != 255).all()


@pytest.mark.parametrize("bad", [{"input_scale": 0.0}, {"input_scale": float("nan")}, {"input_offset": float("inf")},
                                 {"chunk_tiles": 0}, {"runtime": "tensorrt"}])
def test_bad_options_are_refused(bad: dict) -> None:
    from geovigie.errors import InvalidInputError

    with pytest.raises(InvalidInputError):
        PredictOptions(**bad)
