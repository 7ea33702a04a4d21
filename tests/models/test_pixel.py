"""Pixel-classifier bundles: a scikit-learn forest on bands + indices (+ 3 x 3 mean) as one ONNX graph that takes
and gives what a network does, run by `geovigie predict` with ONNX Runtime and no PyTorch network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from geovigie.errors import BundleError
from geovigie.models import (
    ModelBundle,
    PixelFeatures,
    check_runtime,
    export_onnx,
    feature_model,
    load_bundle,
    mlm_item,
    normalise,
)
from geovigie.models._pixel import PROBABILITY_FLOOR
from geovigie.training import normalisation_of, parse_config, run_experiment
from geovigie.training._config import Candidate
from geovigie.training._pixels import PixelCandidate, resolve_indices
from tests.conftest import SLOVENIA_SCENE
from tests.models.conftest import Slovenia
from tests.training.conftest import tiny_config

BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]


@pytest.fixture(scope="module")
def forest(slovenia: Slovenia) -> PixelCandidate:
    """A small forest on bands, NDVI, NDWI and their 3 x 3 mean, fitted on scenes 2-3 (real labels)."""
    spec = Candidate(name="rf", kind="random-forest", trees=12, max_depth=10, indices=["ndvi", "ndwi"],
                     neighbourhood=3)
    labelled = slovenia.labels[0] != 255
    return PixelCandidate(spec, BANDS, 5, seed=0).fit(list(slovenia.images[1:]), list(slovenia.labels[1:]),
                                                      [labelled, labelled])


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_onnx_matches_predict_proba_on_real_pixels(forest: PixelCandidate, slovenia: Slovenia) -> None:
    """The graph takes normalised batches as a network does, undoes the normalisation and gives the forest's
    probabilities (log), on every pixel of a scene it was not fitted on."""
    import onnxruntime

    norm = normalisation_of(list(slovenia.images[1:]), [slovenia.labels[0] != 255] * 2, "robust")
    session = onnxruntime.InferenceSession(forest.to_onnx(norm).SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    scene = slovenia.images[0]  # scene 1: never trained on
    (logits,) = session.run(None, {"input": normalise(norm, scene[None].copy())})
    assert logits.shape == (1, 5, 101, 100) and logits.dtype == np.float32
    features = forest.scene_features(scene)
    expected = forest.model.predict_proba(features.reshape(features.shape[0], -1).T)  # (H * W, present classes)
    got = _softmax(logits)[0].reshape(5, -1).T[:, forest.model.classes_]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.array_equal(logits[0].argmax(0), forest.probabilities(scene).argmax(0))
    # classes the forest never saw in training get the floor, nothing more
    missing = sorted(set(range(5)) - set(forest.model.classes_.tolist()))
    if missing:
        assert np.allclose(logits[0, missing], np.log(PROBABILITY_FLOOR))


def test_features_are_the_bands_indices_and_their_neighbourhood_mean(slovenia: Slovenia) -> None:
    import onnxruntime

    spec = PixelFeatures(indices=resolve_indices(["ndvi"], BANDS), neighbourhood=3)
    session = onnxruntime.InferenceSession(feature_model(13, spec).SerializeToString())
    scene = slovenia.images[1]
    (out,) = session.run(None, {"input": scene[None]})
    assert out.shape == (1, 28, 101, 100)  # 13 bands + NDVI, then their 3 x 3 means
    np.testing.assert_array_equal(out[0, :13], scene)
    ndvi = (scene[7] - scene[3]) / (scene[7] + scene[3] + 1e-6)
    np.testing.assert_allclose(out[0, 13], ndvi, atol=1e-6)
    np.testing.assert_allclose(out[0, 14 + 3, 50, 40], scene[3, 49:52, 39:42].mean(), atol=1e-6)  # interior
    np.testing.assert_allclose(out[0, 14 + 3, 0, 0], scene[3, 0:2, 0:2].mean(), atol=1e-6)  # corner: 4 pixels


def test_unknown_index_or_missing_band_is_refused() -> None:
    from geovigie.training import ConfigError

    with pytest.raises(ConfigError, match="unknown index 'evi'"):
        resolve_indices(["evi"], BANDS)
    with pytest.raises(ConfigError, match="needs bands B11 and B08"):
        resolve_indices(["ndbi"], ["B02", "B03", "B04", "B08"])


@pytest.fixture(scope="module")
def forest_bundle(tmp_path_factory: pytest.TempPathFactory) -> ModelBundle:
    """A pixel-classifier bundle written by `geovigie train` (a forest the only candidate; scene 3 held out)."""
    config = parse_config(tiny_config(
        split={"mode": "leave-one-date-out", "holdout": "scene-3"},
        candidates=[{"name": "forest", "kind": "random-forest", "trees": 8, "max_depth": 8,
                     "indices": ["ndvi", "ndwi"]}]), ".")
    result = run_experiment(config, tmp_path_factory.mktemp("pixel") / "run", device="cpu", progress=False)
    assert result is not None
    return load_bundle(result.bundle.path)


def test_forest_bundle_card_item_and_files(forest_bundle: ModelBundle) -> None:
    card = forest_bundle.card
    assert card.kind == "pixel-classifier" and card.architecture is None
    assert [i.name for i in card.pixel.indices] == ["ndvi", "ndwi"]
    assert "RandomForestClassifier(n_estimators=8" in card.pixel.estimator
    assert len(card.normalisation.mean) == 13 and card.normalisation.mean != [0.0] * 13  # training statistics
    assert sorted(p.name for p in forest_bundle.path.iterdir()) == ["card.json", "item.json", "model.onnx"]
    assert forest_bundle.weights_path.name == "model.onnx" and card.weights_sha256 == card.onnx.sha256
    assert card.metrics["selection"]["winner"] == "forest"
    assert set(card.metrics["selection"]["table"]) == {"forest", "majority_class"}
    item = mlm_item(forest_bundle)
    assert item.properties["mlm:framework"] == "scikit-learn"
    assert "per-pixel" in item.properties["mlm:architecture"]
    assert item.properties["mlm:total_parameters"] > 100
    assert "weights" not in item.assets and "mlm:weights" in item.assets["onnx"].roles
    with pytest.raises(BundleError, match="use runtime onnx or auto"):
        check_runtime(forest_bundle, "torch", "cpu")
    with pytest.raises(BundleError, match="run it with runtime onnx"):
        forest_bundle.load_network()
    with pytest.raises(BundleError, match="already its ONNX model"):
        export_onnx(forest_bundle)


def test_forest_bundle_predicts_through_geovigie_predict_without_torch(
        forest_bundle: ModelBundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from geovigie.cli import app

    def no_network(self: ModelBundle, device: object = "cpu") -> None:
        raise AssertionError("a pixel classifier must not load a PyTorch network")

    monkeypatch.setattr(ModelBundle, "load_network", no_network)
    monkeypatch.setenv("GEOVIGIE_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "out"
    for runtime in ("onnx", "auto"):
        result = CliRunner().invoke(app, ["predict", str(SLOVENIA_SCENE), "--out", str(out), "--bundle",
                                          str(forest_bundle.path), "--runtime", runtime, "--product-level", "L1C",
                                          "--tile-size", "64", "--overlap", "16", "--device", "cpu"])
        assert result.exit_code == 0, result.output
    classes_path = next(out.glob("*_classes.tif"))
    with rasterio.open(classes_path) as src:
        classes = src.read(1)
    with rasterio.open(SLOVENIA_SCENE) as src:
        scene = src.read().astype(np.float32)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(forest_bundle.weights_path))
    (logits,) = session.run(None, {"input": normalise(forest_bundle.card, scene[None].copy())})
    assert classes.shape == (101, 100)
    assert np.array_equal(classes, logits[0].argmax(0))  # per-pixel: tiling changes nothing
    torch_run = CliRunner().invoke(app, ["predict", str(SLOVENIA_SCENE), "--out", str(tmp_path / "t"), "--bundle",
                                         str(forest_bundle.path), "--runtime", "torch", "--product-level", "L1C"])
    assert torch_run.exit_code == 2 and "use runtime onnx or auto" in torch_run.output
