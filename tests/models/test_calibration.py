"""Temperature scaling of the shipped bundle on its real validation blocks of the Slovenia scenes."""

from __future__ import annotations

import numpy as np
import pytest

from geovigie.errors import InvalidInputError
from geovigie.models import (
    NETWORK_BUNDLE,
    calibrate,
    expected_calibration_error,
    fit_temperature,
    load_bundle,
    load_predictor,
    normalise,
    normalise_scene,
    softmax,
)
from geovigie.training import load_config, load_scenes, spatial_split
from tests.conftest import REPO
from tests.models.conftest import Slovenia


def _nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    probs = np.moveaxis(softmax(logits, temperature), 1, -1)[labels != 255]  # (N, C) of the labelled pixels
    picked = probs[np.arange(len(probs)), labels[labels != 255].astype(np.int64)]
    return float(-np.log(np.maximum(picked, 1e-12)).mean())


@pytest.fixture(scope="module")
def validation(slovenia: Slovenia) -> tuple[np.ndarray, np.ndarray]:
    """Raw logits of scenes 1-3 and their labels on the bundle's validation blocks only (255 elsewhere)."""
    bundle = load_bundle(NETWORK_BUNDLE)  # module scope: the autouse default pin does not reach here
    scenes = np.stack([normalise_scene(image, bundle.card.scene_normalisation) for image in slovenia.images])
    logits = load_predictor(bundle, "cpu", calibrated=False)(normalise(bundle.card, scenes))
    config = load_config(REPO / "training" / "configs" / "landcover-s2l1c-slovenia-unet.toml")  # its recipe
    loaded, _ = load_scenes(config)
    sp = config.split  # the bundle trains on the spatial blocks of all dates, after the leave-one-date-out folds
    split = spatial_split(loaded, mode="blocks", block_px=sp.block_px, buffer_px=sp.buffer_px,
                          val_fraction=sp.val_fraction, test_fraction=sp.test_fraction, seed=sp.seed)
    val = split[loaded[0].name].val  # the same blocks on every date
    return logits, np.where(val[None], slovenia.labels, 255).astype(np.uint8)


def test_temperature_lowers_nll_and_ece_on_the_blocks_it_was_fitted_on(validation: tuple) -> None:
    logits, labels = validation
    calibration = calibrate(logits, labels, fitted_on="validation blocks of scenes 1-3")
    t = calibration.temperature
    assert 0 < t != 1.0
    assert calibration.pixels == int((labels != 255).sum()) > 0
    assert _nll(logits, labels, t) < _nll(logits, labels, 1.0)
    # an optimum: a little hotter or colder is worse
    assert _nll(logits, labels, t) <= min(_nll(logits, labels, t * 1.05), _nll(logits, labels, t / 1.05))
    assert calibration.ece_before is not None and calibration.ece_after is not None
    assert calibration.ece_after <= calibration.ece_before
    assert calibration.ece_after == pytest.approx(expected_calibration_error(softmax(logits, t), labels))


def test_temperature_changes_probabilities_never_argmax(validation: tuple) -> None:
    logits, labels = validation
    t = fit_temperature(logits, labels)
    before, after = softmax(logits), softmax(logits, t)
    assert np.abs(after - before).max() > 0.01
    assert np.array_equal(after.argmax(axis=1), before.argmax(axis=1))
    np.testing.assert_allclose(after.sum(axis=1), 1.0, atol=1e-5)


def test_fit_is_deterministic_and_shape_agnostic(validation: tuple) -> None:
    logits, labels = validation
    flat = np.moveaxis(logits, 1, -1).reshape(-1, logits.shape[1])
    assert fit_temperature(logits, labels) == fit_temperature(logits, labels)
    assert fit_temperature(flat, labels.reshape(-1)) == pytest.approx(fit_temperature(logits, labels), rel=1e-9)


def test_ece_of_a_perfect_and_a_useless_classifier() -> None:
    labels = np.array([0, 1, 2, 1, 255])
    one_hot = np.eye(3)[np.minimum(labels, 2)]
    assert expected_calibration_error(one_hot, labels) == 0.0
    # always sure of class 0 but right on one labelled pixel in four: ECE = |0.25 - 1|
    assert expected_calibration_error(np.tile([1.0, 0.0, 0.0], (5, 1)), labels) == pytest.approx(0.75)


def test_bad_inputs_are_named() -> None:
    logits = np.zeros((4, 3), dtype=np.float32)
    with pytest.raises(InvalidInputError, match="no labelled pixel"):
        fit_temperature(logits, np.full(4, 255))
    with pytest.raises(InvalidInputError, match=r"labels \[7\]"):
        fit_temperature(logits, np.array([0, 1, 7, 255]))
    with pytest.raises(InvalidInputError, match="do not match"):
        fit_temperature(logits, np.zeros(5, dtype=int))
    with pytest.raises(InvalidInputError, match="NaN"):
        fit_temperature(np.full((2, 3), np.nan), np.array([0, 1]))
