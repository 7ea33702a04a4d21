"""`predict` with a two-date bundle: the input and its previous pass, read window by window from both files, each
scene-normalised on its own, and the STAC item naming both."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from geovigie.inference import PredictOptions, predict, prepare_source
from geovigie.inference._scene import scene_maps
from geovigie.models import load_predictor, normalise, normalise_scene
from geovigie.workflows import landcover
from tests._support.multidate import two_date_bundle
from tests.training.conftest import SLOVENIA_DIR

TARGET, PREVIOUS = SLOVENIA_DIR / "reference_scene_2.tif", SLOVENIA_DIR / "reference_scene_3.tif"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    return two_date_bundle(tmp_path_factory.mktemp("two-dates"))


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read().astype(np.float32)


def test_stacked_source_reads_both_passes_window_by_window_with_their_own_statistics(bundle) -> None:  # noqa: ANN001
    source = prepare_source(TARGET, bundle, product_level="L1C", previous=PREVIOUS)
    assert len(source.band_names) == bundle.card.channels == 26
    assert source.band_names[13] == "B01_previous"
    data, valid = source.read(Window(10, 20, 8, 5))
    assert data.shape == (26, 5, 8) and valid.all()  # one window of each file, never the whole rasters
    np.testing.assert_array_equal(data[:13], _read(TARGET)[:, 20:25, 10:18])
    np.testing.assert_array_equal(data[13:], _read(PREVIOUS)[:, 20:25, 10:18])
    maps = scene_maps(source, bundle.card)
    card = bundle.card
    for image, part in ((_read(TARGET), maps[:13]), (_read(PREVIOUS), maps[13:])):  # each pass its own statistics
        ((median, _), _) = part[7]
        assert median == pytest.approx(float(np.median(image[7])))
        assert card.scene_normalisation.method == "median-mad"


def test_tiled_two_date_prediction_matches_the_whole_stack(bundle, settings, dask_client,  # noqa: ANN001
                                                           tmp_path: Path) -> None:
    options = PredictOptions.from_settings(settings.model_copy(update={"tile_size": 64, "overlap": 32}))
    result = predict(TARGET, tmp_path, options, bundle=bundle, client=dask_client, progress=False,
                     product_level="L1C", previous=PREVIOUS)
    card = bundle.card
    stack = np.concatenate([normalise_scene(_read(TARGET), card.scene_normalisation),
                            normalise_scene(_read(PREVIOUS), card.scene_normalisation)])
    whole = load_predictor(bundle, "cpu", runtime="onnx")(normalise(card, stack[None].copy()))[0].argmax(0)
    with rasterio.open(result.classes_path) as src:
        tiled = src.read(1)
        inputs = src.tags()["GEOVIGIE_INPUTS"]
    assert result.tiles == 9
    assert (tiled == whole).mean() >= 0.999  # a per-pixel model: tiling and blending change nothing
    assert "reference_scene_2.tif" in inputs and "+ reference_scene_3.tif" in inputs
    again = predict(TARGET, tmp_path, options, bundle=bundle, client=dask_client, progress=False,
                    product_level="L1C", previous=PREVIOUS)
    assert again.skipped
    other = predict(TARGET, tmp_path, options, bundle=bundle, client=dask_client, progress=False,
                    product_level="L1C", previous=SLOVENIA_DIR / "reference_scene_1.tif")
    assert not other.skipped and other.classes_path != result.classes_path  # another previous pass, another output


def test_published_item_lists_both_inputs(bundle, settings, dask_client, tmp_path: Path) -> None:  # noqa: ANN001
    layer = landcover(TARGET, settings, bundle=bundle, client=dask_client, out_dir=tmp_path / "out",
                      product_level="L1C", previous=PREVIOUS, progress=False)
    item = layer.item
    named = [link.href for link in item.get_links("derived_from")] + item.properties.get("geovigie:inputs", [])
    assert [Path(n).name for n in named] == ["reference_scene_2.tif", "reference_scene_3.tif"]
