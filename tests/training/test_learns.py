"""A short real training run on shipped Landsat data learns: the loss falls and held-out blocks beat the majority."""

from __future__ import annotations

import pytest

from geovigie.models import load_bundle
from geovigie.training import load_config, run_experiment
from tests.conftest import REPO

LANDSAT = REPO / "training" / "configs" / "landcover-landsat7-nc.toml"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """The shipped Landsat NC data and network, on v1's spatial blocks and a reduced, seeded budget (the network with
    the random forest beside it, not the whole spatial-fold selection)."""
    config = load_config(LANDSAT).model_copy(deep=True)
    config.candidates = []
    config.split = config.split.model_copy(update={"mode": "blocks", "holdout": None, "block_px": 16,
                                                   "test_fraction": 0.25, "seed": 3})
    train = config.train
    train.epochs, train.steps_per_epoch, train.batch_size, train.chip_size, train.lr = 5, 8, 16, 32, 1e-2
    train.loss, train.class_weights, train.monitor = "ce", "none", "val_loss"
    train.val_chips, train.random_forest_trees, train.early_stopping_patience = 8, 20, 0
    config.model.encoder_depth, config.model.decoder_channels = 3, [32, 16, 16]
    config.output.onnx = False
    out = tmp_path_factory.mktemp("learns")
    return run_experiment(config, out / "run", device="cpu", progress=False), out


def test_short_real_training_lowers_the_loss(run) -> None:  # noqa: ANN001
    result, _ = run
    history = result.fit.history
    assert len(history) == 5
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_network_beats_the_majority_class_on_held_out_blocks(run) -> None:  # noqa: ANN001
    result, _ = run
    test = result.metrics["test_blocks"]
    network, majority = test["network"], test["majority_class"]
    assert network["pixels"] == majority["pixels"] > 300  # the same labelled test pixels, none trained on
    assert network["overall_accuracy"] > majority["overall_accuracy"]
    assert network["miou"] > majority["miou"]


def test_calibration_is_judged_on_held_out_pixels(run) -> None:  # noqa: ANN001
    result, out = run
    report = result.metrics["calibration"]
    assert report["decided_on"] == "test_blocks"
    held = report["ece"]["test_blocks"]
    assert held["pixels"] == result.metrics["test_blocks"]["network"]["pixels"]
    card = load_bundle(out / "run" / "bundle").card
    assert card.calibration is not None
    if held["fitted"] > held["t1"]:  # the fitted temperature would make held-out probabilities worse: T = 1
        assert card.calibration.temperature == 1.0 and "kept T = 1" in card.calibration.fitted_on
    else:
        assert card.calibration.temperature == pytest.approx(report["fitted_temperature"])
