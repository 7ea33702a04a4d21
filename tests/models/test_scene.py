"""Per-scene input normalisation (median / MAD, percentiles, histogram matching): statistics over the whole raster,
recorded in the card, applied identically by training and by `geovigie predict` (tiles see whole-raster stats)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import rasterio

from geovigie.inference import open_source
from geovigie.models import (
    DEFAULT_BUNDLE,
    PROBABILITY_FLOOR,
    ModelBundle,
    SceneNormalisation,
    apply_band_maps,
    band_maps,
    load_bundle,
    normalise_scene,
    reference_of,
    softmax,
    stat_pixels,
)
from geovigie.training import parse_config, run_experiment
from geovigie.training._config import Candidate
from geovigie.training._pixels import PixelCandidate
from tests.conftest import DATA, SLOVENIA_SCENE
from tests.models.conftest import Slovenia
from tests.training.conftest import tiny_config

BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
HAZY = DATA / "s2-l1c-slovenia" / "reference_scene_0.tif"


def test_median_mad_standardises_every_band_of_a_real_scene(slovenia: Slovenia) -> None:
    out = normalise_scene(slovenia.images[0], SceneNormalisation(method="median-mad"))
    flat = out.reshape(13, -1).astype(np.float64)
    np.testing.assert_allclose(np.median(flat, axis=1), 0.0, atol=1e-5)
    mad = np.median(np.abs(flat - np.median(flat, axis=1, keepdims=True)), axis=1)
    np.testing.assert_allclose(1.4826 * mad, 1.0, rtol=1e-4)


def test_percentiles_map_p2_and_p98_to_0_and_1(slovenia: Slovenia) -> None:
    out = normalise_scene(slovenia.images[1], SceneNormalisation(method="percentiles"))
    low, high = np.percentile(out.reshape(13, -1), [2, 98], axis=1)
    np.testing.assert_allclose(low, 0.0, atol=1e-5)
    np.testing.assert_allclose(high, 1.0, atol=1e-5)


def test_histogram_matching_gives_a_hazy_scene_the_reference_quantiles(slovenia: Slovenia) -> None:
    spec = reference_of(list(slovenia.images), "histogram-match")
    with rasterio.open(HAZY) as src:
        hazy = src.read().astype(np.float32)
    before = np.abs(np.median(hazy[0]) - spec.reference[0][50])
    out = normalise_scene(hazy, spec)
    reference = np.asarray(spec.reference)
    quantiles = np.percentile(out.reshape(13, -1), spec.levels, axis=1).T
    np.testing.assert_allclose(quantiles[:, 1:-1], reference[:, 1:-1], atol=5e-3)  # B10: few distinct values
    assert abs(np.median(out[0]) - spec.reference[0][50]) < before / 20  # the haze offset is gone (B01)


def test_the_mapping_is_linear_beyond_the_end_knots_and_a_constant_band_is_not_divided_by_zero() -> None:
    maps = (((0.0, 1.0, 2.0), (0.0, 10.0, 12.0)),)
    out = apply_band_maps(np.array([[[-1.0, 0.5, 3.0]]], np.float32), maps)
    np.testing.assert_allclose(out[0, 0], [-10.0, 5.0, 14.0])
    constant = np.full((2, 4, 4), 0.3, np.float32)
    constant[1] = np.arange(16).reshape(4, 4)
    for method in ("median-mad", "percentiles"):
        out = normalise_scene(constant, SceneNormalisation(method=method))
        assert np.isfinite(out).all() and np.allclose(out[0], 0.0)


def test_no_valid_pixel_and_a_wrong_band_count_are_refused(slovenia: Slovenia) -> None:
    with pytest.raises(ValueError, match="no valid pixel"):
        band_maps(np.zeros((13, 0)), SceneNormalisation(method="median-mad"))
    spec = reference_of(list(slovenia.images), "histogram-match")
    with pytest.raises(ValueError, match="12 bands, the reference 13"):
        band_maps(stat_pixels(slovenia.images[0][:12]), spec)
    with pytest.raises(ValueError, match="one reference quantile per level"):
        SceneNormalisation(method="histogram-match", levels=[0.0, 100.0], reference=[[0.0]])
    with pytest.raises(ValueError, match="low < high"):
        SceneNormalisation(method="percentiles", percentiles=(98.0, 2.0))


def test_statistics_of_predict_cover_the_whole_raster_and_subsample_large_ones(slovenia: Slovenia) -> None:
    from geovigie.inference._scene import scene_maps

    spec = SceneNormalisation(method="median-mad")
    card = load_bundle(DEFAULT_BUNDLE).card.model_copy(update={"scene_normalisation": spec})
    source = open_source(str(HAZY))
    with rasterio.open(HAZY) as src:
        image = src.read().astype(np.float32)
    assert scene_maps(source, card) == band_maps(stat_pixels(image), spec)  # every pixel: exactly training's
    scaled = scene_maps(source, card, input_scale=10000.0)  # digital numbers: the same standardised values
    np.testing.assert_allclose(apply_band_maps(image * 10000, scaled), apply_band_maps(image, band_maps(
        stat_pixels(image), spec)), atol=1e-4)
    sparse = scene_maps(source, card, max_pixels=2600)  # every 2nd row and column
    assert sparse == band_maps(stat_pixels(image[:, ::2, ::2]), spec)
    assert scene_maps(source, card.model_copy(update={"scene_normalisation": None})) is None


def test_a_raster_without_valid_pixel_maps_nothing(tmp_path: Path) -> None:
    """Only a forced run reaches the statistics of such an input (`predict` refuses it first): all its outputs are
    nodata, and the mapping is the identity."""
    from geovigie.inference._scene import scene_maps

    path = tmp_path / "empty.tif"
    with rasterio.open(HAZY) as src:
        profile = {**src.profile, "nodata": 0.0}
        descriptions = src.descriptions
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.zeros((13, 101, 100), np.float32))
        dst.descriptions = descriptions
    card = load_bundle(DEFAULT_BUNDLE).card.model_copy(
        update={"scene_normalisation": SceneNormalisation(method="median-mad")})
    assert scene_maps(open_source(str(path)), card) == (((0.0, 1.0), (0.0, 1.0)),) * 13


@pytest.fixture(scope="module", params=["median-mad", "histogram-match"])
def scene_forest_bundle(request: pytest.FixtureRequest,
                        tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelBundle, PixelCandidate]:
    """A pixel-classifier bundle written by `geovigie train` with a scene normalisation (scene 3 held out), and the
    same candidate fitted the same way outside the run."""
    spec = {"name": "forest", "kind": "random-forest", "trees": 8, "max_depth": 8, "indices": ["ndvi", "ndwi"],
            "scene": request.param}
    config = parse_config(tiny_config(split={"mode": "leave-one-date-out", "holdout": "scene-3"},
                                      candidates=[spec]), ".")
    result = run_experiment(config, tmp_path_factory.mktemp("scene") / "run", device="cpu", progress=False)
    assert result is not None
    from geovigie.training import load_scenes, spatial_split

    scenes, bands = load_scenes(config)
    sp = config.split
    split = spatial_split(scenes, mode=sp.mode, block_px=sp.block_px, buffer_px=sp.buffer_px,
                          val_fraction=sp.val_fraction, test_fraction=sp.test_fraction, seed=sp.seed,
                          holdout=sp.holdout)
    candidate = PixelCandidate(Candidate(**spec), bands, 5, config.train.seed)
    candidate.fit([s.image for s in scenes], [s.labels for s in scenes], [split[s.name].train for s in scenes])
    return load_bundle(result.bundle.path), candidate


def test_card_records_the_scene_normalisation_and_the_candidate_table(
        scene_forest_bundle: tuple[ModelBundle, PixelCandidate]) -> None:
    bundle, _ = scene_forest_bundle
    card = bundle.card
    _, candidate = scene_forest_bundle
    assert card.scene_normalisation == candidate.scene  # the fitted normalisation, reference included
    centre = card.scene_normalisation.raw_centre  # raw medians of the training pixels: reflectance, for advice
    assert len(centre) == 13 and 0.03 < float(np.median(centre)) < 0.3
    assert f"{card.scene_normalisation.method} scene-normalised" in card.pixel.estimator
    assert set(card.metrics["selection"]["table"]) == {"forest", "majority_class"}
    # the card's normalisation is that of the mapped training pixels: close to 0 / 1, not reflectance
    assert max(abs(m) for m in card.normalisation.mean) < 1.0
    from geovigie.models import mlm_item
    from geovigie.tiles import validate_offline

    item = mlm_item(bundle)
    bands = item.properties["mlm:input"][0]
    assert card.scene_normalisation.describe() in bands["description"]
    assert "normalise_scene" in bands["pre_processing_function"]["expression"]
    validate_offline(item)


def test_predict_applies_whole_raster_statistics_as_training_does(
        scene_forest_bundle: tuple[ModelBundle, PixelCandidate], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from geovigie.inference import PredictOptions, predict

    bundle, candidate = scene_forest_bundle
    monkeypatch.setenv("GEOVIGIE_DATA_DIR", str(tmp_path / "data"))
    with rasterio.open(HAZY) as src:
        hazy = src.read().astype(np.float32)
    expected = candidate.probabilities(hazy)  # the training code path: scikit-learn on the mapped scene
    result = predict(HAZY, tmp_path / "out", PredictOptions(tile_size=32, overlap=8, device="cpu", runtime="onnx"),
                     bundle=bundle, product_level="L1C", progress=False)
    with rasterio.open(result.classes_path) as src:
        classes = src.read(1)
    with rasterio.open(result.probabilities_path) as src:
        proba = src.read().astype(np.float32) * np.float32(src.scales[0])
    calibrated = softmax(np.log(np.maximum(expected, PROBABILITY_FLOOR)) / bundle.card.temperature, axis=0)
    close = (np.abs(proba - calibrated) < 0.003).all(axis=0)  # probabilities stored as bytes (1 / 250)
    # float32 rounding (the card's normalisation applied by predict, undone in the graph) may move a value across a
    # tree's threshold: measured 0 pixels of 10,100 with median / MAD, 44 with histogram matching (whose mapped values
    # crowd on the reference quantiles), none changing the class
    assert (~close).mean() < 0.01 and (classes != expected.argmax(0)).mean() < 0.001
    per_tile = candidate.probabilities(hazy[:, :32, :32]).argmax(0)  # statistics of one tile alone differ
    assert not np.array_equal(per_tile, expected.argmax(0)[:32, :32])


def test_a_network_with_scene_normalisation_predicts_as_it_was_trained(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from geovigie.inference import PredictOptions, predict
    from geovigie.models import forward, normalise

    config = parse_config(tiny_config(split={"mode": "leave-one-date-out", "holdout": "scene-3"},
                                      candidates=[{"name": "network_mad", "kind": "network", "scene": "median-mad"}]),
                          ".")
    result = run_experiment(config, tmp_path / "run", device="cpu", progress=False)
    assert result is not None
    bundle = load_bundle(result.bundle.path)
    assert bundle.card.kind == "network" and bundle.card.scene_normalisation.method == "median-mad"
    assert max(abs(m) for m in bundle.card.normalisation.mean) < 1.0  # statistics of the mapped pixels
    monkeypatch.setenv("GEOVIGIE_DATA_DIR", str(tmp_path / "data"))
    with rasterio.open(HAZY) as src:
        hazy = src.read().astype(np.float32)
    mapped = normalise_scene(hazy, bundle.card.scene_normalisation)
    logits = forward(bundle.load_network(), normalise(bundle.card, mapped[None].copy()), torch.device("cpu"),
                     amp=False)[0]
    out = predict(HAZY, tmp_path / "out", PredictOptions(tile_size=128, overlap=0, device="cpu", runtime="torch"),
                  bundle=bundle, product_level="L1C", progress=False)
    with rasterio.open(out.classes_path) as src:
        classes = src.read(1)
    assert (classes == logits.argmax(0)).mean() > 0.999  # one tile: the same network on the same numbers


def test_another_scene_normalisation_marks_earlier_outputs_stale(slovenia: Slovenia) -> None:
    from geovigie.inference import PredictOptions
    from geovigie.inference._predict import prediction_signature

    bundle = load_bundle(DEFAULT_BUNDLE)
    other = dataclasses.replace(bundle, card=bundle.card.model_copy(
        update={"scene_normalisation": reference_of(list(slovenia.images), "histogram-match")}))
    options = PredictOptions(device="cpu")
    assert prediction_signature(bundle, options) != prediction_signature(other, options)


@pytest.mark.parametrize("name", ["landcover-s2l1c-slovenia-v4", "artificial-surface-s2l1c-slovenia-v3",
                                  "landcover-s2l1c-slovenia-unet-v1"])
def test_shipped_scene_normalised_bundles_show_their_table_and_predict_a_real_scene(name: str) -> None:
    from geovigie.models import load_predictor, normalise

    bundle = load_bundle(DEFAULT_BUNDLE.parent / name)
    card = bundle.card
    selection = card.metrics["selection"]
    assert selection["winner"] == card.metrics["shipped_model"] and "majority_class" in selection["table"]
    assert selection["set"] == "folds_heldout_test_blocks" and len(selection["table"]) >= 7
    assert card.scene_normalisation is not None and card.scene_normalisation.method == "median-mad"
    assert (bundle.path / "model.onnx").stat().st_size < 3_000_000  # small enough to ship
    with rasterio.open(SLOVENIA_SCENE) as src:
        image = normalise_scene(src.read().astype(np.float32), card.scene_normalisation)
    classes = load_predictor(bundle, "cpu", "onnx")(normalise(card, image[None].copy()))[0].argmax(0)
    assert classes.shape == (101, 100) and len(np.unique(classes)) >= 2  # not one class everywhere
