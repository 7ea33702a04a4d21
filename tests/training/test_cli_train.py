"""`geovigie train CONFIG` end to end: a bundle that `predict` uses unchanged; bad configs exit 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import typer
from typer.testing import CliRunner

from geovigie._cli_train import register
from geovigie.cli import _settings, friendly_errors
from geovigie.inference import PredictOptions, predict
from geovigie.models import load_bundle
from tests.conftest import SLOVENIA_SCENE
from tests.training.conftest import tiny_config, write_toml


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """geovigie (test app)."""

    register(app, friendly_errors, _settings)
    return app


def test_train_writes_a_bundle_predict_uses(tmp_path: Path, dask_client) -> None:
    config = write_toml(tmp_path / "tiny.toml", tiny_config(
        split={"mode": "leave-one-date-out", "holdout": "scene-3"},
        train={"epochs": 2, "steps_per_epoch": 2, "batch_size": 2, "chip_size": 32, "val_chips": 2,
               "random_forest_trees": 10}))
    result = CliRunner().invoke(_app(), ["train", str(config), "--out", str(tmp_path / "run"), "--device", "cpu",
                                         "--quiet"])
    assert result.exit_code == 0, result.output
    assert "bundle written to" in result.output
    bundle = load_bundle(tmp_path / "run" / "bundle")
    card = bundle.card
    assert card.metrics["primary_set"] == "heldout_test_blocks"
    held = card.metrics["heldout"]
    assert set(held) == {"network", "random_forest", "majority_class"}
    assert held["network"]["pixels"] == held["random_forest"]["pixels"] > 9000  # the whole of scene 3
    assert 0 <= held["random_forest"]["overall_accuracy"] <= 1
    forest, net = held["random_forest"], card.metrics["heldout_test_blocks"]["network"]
    if net["overall_accuracy"] < card.metrics["heldout_test_blocks"]["random_forest"]["overall_accuracy"]:
        assert "does not beat the per-pixel random forest" in card.limitations
    below_majority = net["overall_accuracy"] < card.metrics["heldout_test_blocks"]["majority_class"]["overall_accuracy"]
    assert ("below always answering the majority class" in card.limitations) == below_majority
    assert forest["per_class"]["forest"]["precision"] is not None
    assert card.provenance["labelled_pixels_per_set"]["heldout"] > 9000
    out = predict(SLOVENIA_SCENE, tmp_path / "pred", PredictOptions(tile_size=64, overlap=16, batch_size=4,
                                                                    device="cpu"),
                  bundle=bundle.path, client=dask_client, progress=False, product_level="L1C")
    with rasterio.open(out.classes_path) as src:
        classes = src.read(1)
    assert classes.shape == (101, 100) and set(np.unique(classes)) <= set(range(5))
    again = CliRunner().invoke(_app(), ["train", str(config), "--out", str(tmp_path / "run"), "--device", "cpu"])
    assert again.exit_code == 2 and "--resume" in again.output


def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = write_toml(tmp_path / "bad.toml", tiny_config(split={"blocks": 3}))
    result = CliRunner().invoke(_app(), ["train", str(config), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "unknown key 'split.blocks'" in result.output


def test_all_folds_rotates_the_held_out_date_and_records_each_fold(tmp_path: Path) -> None:
    config = write_toml(tmp_path / "tiny.toml", tiny_config(
        split={"mode": "leave-one-date-out", "holdout": "scene-3", "fold_epochs": 1},
        train={"epochs": 1, "steps_per_epoch": 1, "batch_size": 2, "chip_size": 32, "val_chips": 1,
               "random_forest_trees": 5}))
    result = CliRunner().invoke(_app(), ["train", str(config), "--out", str(tmp_path / "run"), "--device", "cpu",
                                         "--quiet", "--all-folds"])
    assert result.exit_code == 0, result.output
    assert "folds_heldout_test_blocks" in result.output
    card = load_bundle(tmp_path / "run" / "bundle").card
    folds = card.metrics["folds_heldout_test_blocks"]
    assert card.metrics["primary_set"] == "folds_heldout_test_blocks"
    assert card.metrics["folds"]["values"] == ["scene-1", "scene-2", "scene-3"]
    for model in ("network", "random_forest", "majority_class"):
        per_fold = folds[model]["per_fold"]
        assert list(per_fold) == ["scene-1", "scene-2", "scene-3"]
        assert folds[model]["overall_accuracy"] == pytest.approx(
            np.mean([f["overall_accuracy"] for f in per_fold.values()]))
    for date in ("scene-1", "scene-2", "scene-3"):  # each fold trained without its date and kept its own run
        fold_card = load_bundle(tmp_path / "run" / "folds" / date / "bundle").card
        assert fold_card.provenance["split"].endswith(f"held out: {date}")
        assert fold_card.metrics["heldout"]["network"]["pixels"] > 9000
    assert "heldout" not in card.metrics  # the shipped model saw every date
    assert card.config["split"]["holdout"] == "all"
    blocks = CliRunner().invoke(_app(), ["train", str(write_toml(tmp_path / "blocks.toml", tiny_config())),
                                         "--out", str(tmp_path / "b"), "--all-folds"])
    assert blocks.exit_code == 2 and "--all-folds needs split.mode" in blocks.output
