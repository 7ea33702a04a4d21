"""Bad spatial-fold configs (Landsat NC, one date, space held out): one `error:` line, exit code 2, nothing left
behind, refused before any model is trained."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from geovigie.cli import app
from tests.conftest import REPO
from tests.training.conftest import write_toml

NC = REPO / "training" / "configs" / "landcover-landsat7-nc.toml"


def nc_config(split: dict[str, Any] | None = None, images: dict[str, Any] | None = None) -> dict[str, Any]:
    """The shipped NC config with absolute paths, one cheap candidate, and `split` / `images` changes."""
    config = tomllib.loads(NC.read_text(encoding="utf-8"))
    for entry in config["images"]["files"]:
        entry["paths"] = [str((NC.parent / p).resolve()) for p in entry["paths"]]
    config["labels"]["path"] = str((NC.parent / config["labels"]["path"]).resolve())
    config["candidates"] = [{"name": "forest", "kind": "random-forest", "trees": 2}]
    config["split"] |= split or {}
    config["images"] |= images or {}
    files = config["images"].pop("files")
    config["images"]["files"] = files  # tables after plain keys, for write_toml
    return config


@pytest.mark.parametrize(("name", "split", "images", "words"), [
    ("class-absent-from-training", {"seed": 2}, {},
     ("spatial fold 2 leaves class(es) ['herbaceous'] out of training", "split.seed")),
    ("fewer-groups-than-folds", {"folds": 40}, {}, ("split.folds = 40", "only 25 group(s)", "lower split.folds")),
    ("holdout-not-a-fold", {"holdout": "6"}, {}, ("split.holdout = 'all' or a fold number from 1 to 5", "'6'")),
    ("holdout-missing", {"holdout": None}, {}, ("needs split.holdout",)),
    ("common-names-short", {}, {"common_names": ["blue", "green", "red", "nir", "swir16"]},
     ("images.common_names has 5 names for 6 bands",)),
    ("index-without-its-band", {}, {"common_names": ["blue", "green", "red", "nir", "swir22", "pan"]},
     ("index 'ndbi' needs bands swir16 and nir",)),
])
def test_bad_spatial_fold_config(name: str, split: dict, images: dict, words: tuple[str, ...], tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOVIGIE_DATA_DIR", str(tmp_path / "data"))
    config = nc_config({k: v for k, v in split.items() if v is not None}, images)
    if "holdout" in split and split["holdout"] is None:
        del config["split"]["holdout"]
    if name == "index-without-its-band":
        config["candidates"][0]["indices"] = ["ndvi", "ndbi"]
    path = write_toml(tmp_path / f"{name}.toml", config)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(path), "--out", str(out), "--device", "cpu", "--quiet"])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not out.exists()


def test_predict_with_the_retired_nc_v1_names_v2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    scene = REPO / "data" / "landsat7-landcover-nc" / "lsat7_2000_10.tif"
    result = CliRunner().invoke(app, ["predict", str(scene), "--out", str(out), "--bundle", "landcover-landsat7-nc-v1"])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "'landcover-landsat7-nc-v1' is retired" in lines[0] and "use 'landcover-landsat7-nc-v2'" in lines[0]
    assert not out.exists()
