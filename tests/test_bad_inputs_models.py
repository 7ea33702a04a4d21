"""Bad inputs of the per-scene normalisation options and of the selection tolerance: one `error:` line, exit code
2, nothing left behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from geovigie.cli import app
from geovigie.models import DEFAULT_BUNDLE, load_bundle
from tests._support.cli import assert_one_error_line
from tests.conftest import SLOVENIA_SCENE
from tests.training.conftest import tiny_config, write_toml

HELD_OUT = {"mode": "leave-one-date-out", "holdout": "scene-3"}


@pytest.mark.parametrize(("name", "sections", "words"), [
    ("unknown-scene-method", {"split": HELD_OUT, "candidates": [{"name": "rf", "kind": "random-forest",
                                                                 "scene": "z-score"}]}, ("candidates.0.scene",)),
    ("augment-on-a-forest", {"split": HELD_OUT, "candidates": [{"name": "rf", "kind": "random-forest",
                                                                "augment": {"gain": 0.3}}]},
     ("candidate 'rf'", "augment is for networks")),
    ("negative-tolerance", {"split": HELD_OUT, "candidates": [{"name": "rf", "kind": "random-forest"}],
                            "selection": {"tolerance": -0.1}}, ("selection.tolerance",)),
])
def test_bad_normalisation_config(name: str, sections: dict, words: tuple[str, ...], tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOVIGIE_DATA_DIR", str(tmp_path / "data"))
    config = write_toml(tmp_path / f"{name}.toml", tiny_config(**sections))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(out), "--device", "cpu", "--quiet"])
    assert_one_error_line(result, *words)
    assert not out.exists()


def test_scene_normalised_bundle_on_a_raster_without_valid_pixel(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The default bundle normalises each input over its whole raster: an input with no valid pixel is refused
    before any output exists."""
    assert load_bundle(DEFAULT_BUNDLE).card.scene_normalisation is not None
    monkeypatch.setenv("GEOVIGIE_DATA_DIR", str(tmp_path / "data"))
    empty = tmp_path / "empty.tif"
    with rasterio.open(SLOVENIA_SCENE) as src:
        profile, descriptions = {**src.profile, "nodata": 0.0}, src.descriptions
    with rasterio.open(empty, "w", **profile) as dst:
        dst.write(np.zeros((13, 101, 100), np.float32))
        dst.descriptions = descriptions
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["predict", str(empty), "--out", str(out), "--product-level", "L1C",
                                      "--device", "cpu"])
    assert_one_error_line(result, "empty.tif")
    assert not out.exists() or not any(out.iterdir())
