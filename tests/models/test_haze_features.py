"""Haze options of pixel classifiers: dark-object subtraction as a per-scene normalisation, and a subset of the input
channels (or none: indices only) as features, computed by the same ONNX graph in training and in `predict`."""

from __future__ import annotations

import numpy as np
import onnxruntime

from geovigie.models import SceneNormalisation, band_maps, feature_count, feature_model, normalise_scene, stat_pixels
from geovigie.training._config import Candidate
from geovigie.training._pixels import PixelCandidate, resolve_channels, resolve_indices
from geovigie.training._select import select
from tests.models.conftest import Slovenia

BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
CLEAR = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]


def test_dark_object_subtraction_removes_each_band_s_first_percentile(slovenia: Slovenia) -> None:
    scene = slovenia.images[0]
    spec = SceneNormalisation(method="dark-object")
    out = normalise_scene(scene, spec)
    for band in range(13):  # 1 % of the pixels at or below 0 after the subtraction, the gain unchanged
        assert np.mean(out[band] <= 1e-6) >= 0.01
        np.testing.assert_allclose(out[band] - (scene[band] - np.percentile(scene[band], 1)), 0, atol=1e-6)
    hazier = normalise_scene(scene + np.float32(0.05), spec)  # an additive haze is gone
    np.testing.assert_allclose(hazier, out, atol=1e-5)
    constant = np.full((1, 4, 4), 0.5, np.float32)  # boundary: a constant band maps to 0
    assert band_maps(stat_pixels(constant), spec) == (((0.5, 1.5), (0.0, 1.0)),)
    assert np.all(normalise_scene(constant, spec) == 0)
    assert "dark-object" in spec.describe()


def test_channel_subsets_and_indices_only(slovenia: Slovenia) -> None:
    scene = slovenia.images[0]
    kept = resolve_channels(CLEAR, BANDS)
    assert kept == [1, 2, 3, 4, 5, 6, 7, 8, 11, 12]
    assert resolve_channels(None, BANDS) is None and resolve_channels([], BANDS) == []
    assert resolve_channels(["B02"], BANDS, dates=2) == [1, 14]  # each pass's B02
    for channels, expected in ((kept, 10 + 1), ([], 1)):
        spec = Candidate(name="f", kind="random-forest", indices=["ndvi"], bands=CLEAR if channels else [])
        features = PixelCandidate(spec, BANDS, 5, 0).features
        assert feature_count(13, features) == expected
        session = onnxruntime.InferenceSession(feature_model(13, features).SerializeToString())
        (out,) = session.run(None, {"input": scene[None]})
        assert out.shape == (1, expected, 101, 100)
        np.testing.assert_array_equal(out[0, : len(channels)], scene[channels])
        ndvi = (scene[7] - scene[3]) / (scene[7] + scene[3] + 1e-6)
        np.testing.assert_allclose(out[0, -1], ndvi, atol=1e-6)
    assert [i.name for i in resolve_indices(["ndvi"], BANDS, dates=2)] == ["ndvi", "ndvi_previous"]


def test_a_forest_on_a_channel_subset_exports_the_same_probabilities(slovenia: Slovenia) -> None:
    spec = Candidate(name="f", kind="random-forest", trees=5, max_depth=6, indices=["ndvi"], bands=CLEAR,
                     neighbourhood=3, scene="dark-object")
    labelled = slovenia.labels[0] != 255
    forest = PixelCandidate(spec, BANDS, 5, 0).fit(list(slovenia.images[1:]), list(slovenia.labels[1:]),
                                                   [labelled, labelled])
    session = onnxruntime.InferenceSession(forest.to_onnx().SerializeToString())
    prepared = forest.prepare(slovenia.images[0])
    (logits,) = session.run(None, {"input": prepared[None]})
    expected = forest.probabilities(slovenia.images[0])
    assert (np.exp(logits[0]).argmax(0) == expected.argmax(0)).mean() > 0.999


def _row(oa: float | None, miou: float | None, folds: int) -> dict:
    return {"overall_accuracy": oa, "miou": miou, "pixels": 100 * folds, "folds_scored": folds}


def test_a_candidate_scored_on_fewer_folds_is_reported_never_chosen() -> None:
    rows = {"one_date": _row(0.80, 0.26, 3), "two_dates": _row(0.87, 0.34, 1), "none": _row(None, None, 0),
            "majority_class": _row(0.7, 0.14, 3)}
    winner, table = select({"folds_heldout_test_blocks": rows}, ["one_date", "two_dates", "none"], "miou")
    assert winner == "one_date"
    assert table["not_eligible"] == {"two_dates": "scored on 1 of 3 held-out folds",
                                     "none": "scored on 0 of 3 held-out folds"}
    assert set(table["table"]) == {"one_date", "two_dates", "none", "majority_class"}
    full = {"a": _row(0.80, 0.26, 3), "b": _row(0.81, 0.27, 3)}  # boundary: every candidate on every fold
    winner, table = select({"folds_heldout_test_blocks": full}, ["a", "b"], "miou")
    assert winner == "b" and "not_eligible" not in table
