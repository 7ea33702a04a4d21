"""Metrics, class weights and the network recipe, a config run by `geovigie train` (and its alias)."""

from pathlib import Path
from typing import Any

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

UNET = REPO / "training" / "configs" / "landcover-s2l1c-slovenia-unet.toml"


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


def _no_nulls(value: Any) -> Any:
    """A dumped config without the None values and empty tables TOML cannot write."""
    if isinstance(value, dict):
        return {k: _no_nulls(v) for k, v in value.items() if v is not None and v != {}}
    if isinstance(value, list):
        return [_no_nulls(v) for v in value]
    return value


def test_train_landcover_alias_runs_the_network_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The old command runs the shipped network config (here on a reduced budget, two U-Nets and one forest): the
    bundle is the best NETWORK on the held-out dates, the forest and the majority class stay in its table."""
    config = load_config(UNET).dump()
    config["labels"]["path"] = str((UNET.parent / config["labels"]["path"]).resolve())
    for entry in config["images"]["files"]:
        entry["path"] = str((UNET.parent / entry["path"]).resolve())
        entry.pop("paths", None)
        entry.pop("labels", None)
    for key in ("stac", "bands", "input_range"):
        config["images"].pop(key, None)
    config["candidates"] = [c for c in config["candidates"]
                            if c["name"] in ("network", "network_median_mad", "forest_3x3_median_mad_20x8")]
    config["split"] |= {"fold_epochs": 1}
    config["train"] |= {"epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "val_chips": 2}
    config["output"]["onnx"] = False
    tiny = write_toml(tmp_path / "unet-tiny.toml", _no_nulls(config))
    monkeypatch.setattr(cli_train, "shipped_config", lambda name: tiny)
    monkeypatch.setenv("GEOVIGIE_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(_app(), ["train-landcover", "--out", str(tmp_path / "bundle"), "--device", "cpu",
                                         "--quiet"])
    assert result.exit_code == 0, result.output
    card = load_bundle(tmp_path / "bundle").card
    assert f"overall winner {card.metrics['selection']['scope']['overall_winner']}" in result.output
    assert (card.name, card.version) == ("landcover-s2l1c-slovenia-unet", "1")
    selection = card.metrics["selection"]
    assert card.metrics["primary_set"] == selection["set"] == "folds_heldout_test_blocks"
    assert set(selection["table"]) == {"network", "network_median_mad", "forest_3x3_median_mad_20x8",
                                       "majority_class"}
    assert selection["winner"] == card.metrics["shipped_model"] in ("network", "network_median_mad")
    assert card.kind == "network" and card.architecture is not None
    assert selection["scope"]["kinds"] == ["network"]
    table = selection["table"]
    networks = ("network", "network_median_mad")  # in config order: a near tie goes to the first listed
    best = max(table[n]["miou"] for n in networks)
    assert selection["winner"] == next(n for n in networks if table[n]["miou"] >= best - selection["tolerance"])
    overall = selection["scope"]["overall_winner"]
    if overall != selection["winner"]:  # a forest won the whole table: the card says so and names its bundle
        assert "not the best model" in selection["why"] and overall in selection["why"]
        assert "landcover-s2l1c-slovenia-v4" in selection["why"]
    assert card.provenance["training"]["steps_per_epoch"] == 2
