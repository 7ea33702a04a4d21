"""Metrics, class weights and the v1 recipe, now a config run by `geovigie train` (and its alias)."""

from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

import geovigie._cli_train as cli_train
from geovigie.cli import _settings, friendly_errors
from geovigie.models import load_bundle
from geovigie.training import class_weights_for, confusion_matrix, load_config, scores
from tests.conftest import REPO
from tests.training.conftest import write_toml

V1 = REPO / "training" / "configs" / "landcover-s2l1c-slovenia-v1.toml"


def test_metrics_from_a_known_confusion() -> None:
    truth = np.array([0, 0, 1, 1, 1, 255])
    pred = np.array([0, 1, 1, 1, 0, 0])
    matrix = confusion_matrix(truth, pred, 3)
    assert matrix.tolist() == [[1, 1, 0], [1, 2, 0], [0, 0, 0]]
    result = scores(matrix, ["a", "b", "c"])
    assert result["overall_accuracy"] == pytest.approx(3 / 5)
    assert result["per_class"]["a"]["iou"] == pytest.approx(1 / 3)
    assert result["per_class"]["b"]["iou"] == pytest.approx(2 / 4)
    assert result["per_class"]["c"]["iou"] is None
    assert result["miou"] == pytest.approx((1 / 3 + 1 / 2) / 2)


def test_class_weights_favour_rare_classes() -> None:
    weights = class_weights_for(np.array([900, 100, 0]), "auto")
    assert weights[1] > weights[0] > 0
    assert weights[2] == 0
    assert float(weights[:2].mean()) == pytest.approx(1.0)
    assert class_weights_for(np.array([900, 100, 0]), "none").tolist() == [1.0, 1.0, 0.0]


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """geovigie (test app)."""

    cli_train.register(app, friendly_errors, _settings)
    return app


def test_train_landcover_alias_runs_the_v1_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The old command runs the shipped v1 config (here on a reduced budget) and writes a bundle judged on the
    config's validation blocks."""
    config = load_config(V1).dump()
    for section in ("images", "labels"):
        for key in ("path",):
            if key in config[section] and config[section][key]:
                config[section][key] = str((V1.parent / config[section][key]).resolve())
        for entry in config[section].get("files", []):
            entry["path"] = str((V1.parent / entry["path"]).resolve())
            entry.pop("paths", None)
            entry.pop("labels", None)
    config["images"].pop("stac", None)
    config["images"].pop("bands", None)
    config["images"].pop("input_range")
    config["model"] |= {"decoder_channels": [16, 16, 16, 16, 16]}
    config["train"] |= {"steps_per_epoch": 2, "batch_size": 2, "chip_size": 32, "val_chips": 2,
                        "random_forest_trees": 5, "class_weights": "auto"}
    config["output"]["onnx"] = False
    for section in ("labels", "split", "train", "model", "output"):
        config[section] = {k: v for k, v in config[section].items() if v is not None and v != {}}
    tiny = write_toml(tmp_path / "v1-tiny.toml", config)
    monkeypatch.setattr(cli_train, "shipped_config", lambda name: tiny)
    monkeypatch.setenv("GEOVIGIE_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(_app(), ["train-landcover", "--out", str(tmp_path / "bundle"), "--device", "cpu",
                                         "--quiet"])
    assert result.exit_code == 0, result.output
    card = load_bundle(tmp_path / "bundle").card
    assert (card.name, card.version) == ("landcover-s2l1c-slovenia", "1")
    assert card.metrics["primary_set"] == "validation"
    assert "test_blocks" not in card.metrics  # v1 had validation blocks only
    assert card.metrics["validation"]["network"]["pixels"] > 5000
    assert card.provenance["training"]["steps_per_epoch"] == 2
    assert card.provenance["split"].startswith("blocks: map-aligned blocks of 20 px, 30% validation")
