"""Bad inputs of the training and pixel-classifier paths: one `error:` line, exit code 2, nothing left behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from geovigie.cli import app
from geovigie.models import DEFAULT_BUNDLE
from tests._support.cli import assert_one_error_line
from tests.conftest import SLOVENIA_SCENE
from tests.training.conftest import tiny_config, write_toml

HELD_OUT = {"mode": "leave-one-date-out", "holdout": "scene-3"}


@pytest.mark.parametrize(("name", "sections", "words"), [
    ("candidates-on-blocks", {"candidates": [{"name": "rf", "kind": "random-forest"}]},
     ("never on neighbouring blocks", "split.mode")),
    ("unknown-index", {"split": HELD_OUT, "candidates": [{"name": "rf", "kind": "random-forest",
                                                          "indices": ["evi"]}]}, ("unknown index 'evi'",)),
    ("majority-as-candidate", {"split": HELD_OUT, "candidates": [{"name": "majority_class", "kind": "random-forest"}]},
     ("majority_class",)),
    ("unknown-candidate-kind", {"split": HELD_OUT, "candidates": [{"name": "svm", "kind": "svm"}]},
     ("candidates.0.kind",)),
])
def test_bad_training_config(name: str, sections: dict, words: tuple[str, ...], tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOVIGIE_DATA_DIR", str(tmp_path / "data"))
    config = write_toml(tmp_path / f"{name}.toml", tiny_config(**sections))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(out), "--device", "cpu", "--quiet"])
    assert_one_error_line(result, *words)
    assert not (out / "bundle").exists()


def test_pixel_classifier_on_torch_runtime_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOVIGIE_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["predict", str(SLOVENIA_SCENE), "--out", str(out), "--bundle",
                                      str(DEFAULT_BUNDLE), "--runtime", "torch", "--product-level", "L1C"])
    assert_one_error_line(result, "pixel-classifier", "use runtime onnx or auto")
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize(("name", "changes", "options", "words"), [
    ("unknown-encoder", {"model": {"encoder": "no-such-encoder"}}, [], ("encoder 'no-such-encoder'",)),
    ("chip-larger-than-images", {"train": {"chip_size": 100000}}, [], ("chip_size = 100000", "smallest image")),
    ("resume-without-checkpoint", {}, ["--resume"], ("no checkpoint", "drop --resume")),
    ("bundle-is-a-file", {}, ["--bundle", "{tmp}/existing.json"], ("existing file",)),
])
def test_training_refused_before_any_work(name: str, changes: dict, options: list[str], words: tuple[str, ...],
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16's training cases: refused before images are read, a network trained or a file written."""
    monkeypatch.setenv("GEOVIGIE_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "existing.json").write_text("{}")
    config = tiny_config()
    for section, values in changes.items():
        config[section] = {**config.get(section, {}), **values}
    path = write_toml(tmp_path / f"{name}.toml", config)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(path), "--out", str(out), "--device", "cpu", "--quiet",
                                      *[o.format(tmp=tmp_path) for o in options]])
    assert_one_error_line(result, *words)
    assert not out.exists()
    assert (tmp_path / "existing.json").read_text() == "{}"
