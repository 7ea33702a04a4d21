"""`geovigie model info | export-onnx | item`, through a small app built like geovigie.cli's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from geovigie._cli_model import register
from geovigie.cli import friendly_errors
from geovigie.models import NETWORK_BUNDLE, load_bundle, load_predictor


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    main = typer.Typer()

    @main.callback()
    def _root() -> None:
        """geovigie"""

    register(main, friendly_errors, lambda: None)
    return main


def test_export_then_info_and_item(app: typer.Typer, tmp_path: Path) -> None:
    folder = tmp_path / "bundle"
    shutil.copytree(NETWORK_BUNDLE, folder)
    result = CliRunner().invoke(app, ["model", "export-onnx", str(folder)])
    assert result.exit_code == 0, result.output
    assert (folder / "model.onnx").exists()
    load_predictor(folder, "cpu", "onnx")  # the export is usable as written
    info = CliRunner().invoke(app, ["model", "info", str(folder)])
    assert info.exit_code == 0, info.output
    summary = json.loads(info.stdout)
    assert summary["format_version"] == "2" and summary["onnx"]["opset"] == 17
    (folder / "item.json").unlink()
    out = tmp_path / "elsewhere.json"
    assert CliRunner().invoke(app, ["model", "item", str(folder), "--out", str(out)]).exit_code == 0
    assert json.loads(out.read_text())["assets"]["onnx"]["href"] == "./model.onnx"
    assert load_bundle(folder).card.onnx is not None


def test_missing_bundle_is_a_friendly_error(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["model", "info", str(tmp_path)])
    assert result.exit_code == 2
    assert "no model bundle" in result.output


def test_info_of_the_default_bundle_shows_its_normalisation_and_the_table_it_was_chosen_from(
        app: typer.Typer) -> None:
    from geovigie.models import DEFAULT_BUNDLE

    info = CliRunner().invoke(app, ["model", "info", str(DEFAULT_BUNDLE)])
    assert info.exit_code == 0, info.output
    summary = json.loads(info.stdout)
    assert summary["kind"] == "pixel-classifier"
    assert "median" in summary["scene_normalisation"] and "whole input raster" in summary["scene_normalisation"]
    table = summary["selection"]["table"]
    assert summary["selection"]["winner"] in table and "majority_class" in table
    assert {"network", "plain_random_forest", "random_forest"} <= set(table)
    assert all(0 <= row["miou"] <= 1 for row in table.values())
