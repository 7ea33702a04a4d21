"""Bad inputs of multi-date bundles and candidates: one `error:` line naming the file or option and the problem,
exit code 2, nothing left behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine
from typer.testing import CliRunner

from geovigie.cli import app
from geovigie.models import ModelBundle
from tests._support.cli import assert_one_error_line
from tests._support.multidate import FOREST, dated_config, two_date_bundle
from tests.training.conftest import SLOVENIA_DIR, tiny_config, write_toml

TARGET, PREVIOUS = SLOVENIA_DIR / "reference_scene_2.tif", SLOVENIA_DIR / "reference_scene_3.tif"
HELD_OUT = {"mode": "leave-one-date-out", "holdout": "scene-2"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> ModelBundle:
    return two_date_bundle(tmp_path_factory.mktemp("two-dates"))


def _variant(tmp_path: Path, name: str, *, crs: str | None = None, shift: float = 0.0, crop: bool = False,
             bands: int = 13) -> Path:
    """The previous pass rewritten with another CRS, a shifted transform, one row fewer or fewer bands."""
    with rasterio.open(PREVIOUS) as src:
        data, profile, names = src.read(), dict(src.profile), src.descriptions
    if crop:
        data = data[:, :-1]
    data, names = data[:bands], names[:bands]
    t = profile["transform"]
    profile.update(count=bands, height=data.shape[1], transform=Affine(t.a, t.b, t.c + shift, t.d, t.e, t.f))
    if crs:
        profile["crs"] = crs
    path = tmp_path / f"{name}.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = names
    return path


def _predict(tmp_path: Path, bundle: Path | None, *extra: str):  # noqa: ANN202
    args = ["predict", str(TARGET), "--out", str(tmp_path / "out"), "--product-level", "L1C", "--device", "cpu"]
    return CliRunner().invoke(app, args + (["--bundle", str(bundle)] if bundle else []) + list(extra))


@pytest.mark.parametrize(("name", "change", "words"), [
    ("other-crs", {"crs": "EPSG:3035"}, ("other-crs.tif", "not on the grid of", "CRS EPSG:3035")),
    ("shifted", {"shift": 10.0}, ("shifted.tif", "transform")),
    ("one-row-fewer", {"crop": True}, ("one-row-fewer.tif", "shape 100 x 100 px")),
    ("fewer-bands", {"bands": 12}, ("fewer-bands.tif", "12 bands given, 13 expected")),
])
def test_previous_pass_off_the_target_grid(name: str, change: dict, words: tuple[str, ...], bundle: ModelBundle,
                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOVIGIE_DATA_DIR", str(tmp_path / "data"))
    previous = _variant(tmp_path, name, **change)
    assert_one_error_line(_predict(tmp_path, bundle.path, "--previous", str(previous)), *words)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("*.tif"))


@pytest.mark.parametrize(("case", "words"), [
    ("two-date-bundle-one-input", ("takes 2 passes", "--previous")),
    ("one-date-bundle-two-inputs", ("--previous", "takes one pass")),
    ("missing-previous", ("input not found", "nowhere.tif")),
])
def test_wrong_number_of_passes(case: str, words: tuple[str, ...], bundle: ModelBundle, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOVIGIE_DATA_DIR", str(tmp_path / "data"))
    extra = {"two-date-bundle-one-input": (bundle.path, []),
             "one-date-bundle-two-inputs": (None, ["--previous", str(PREVIOUS)]),  # the default: one date
             "missing-previous": (bundle.path, ["--previous", str(tmp_path / "nowhere.tif")])}[case]
    assert_one_error_line(_predict(tmp_path, extra[0], *extra[1]), *words)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("*.tif"))


@pytest.mark.parametrize(("name", "config", "words"), [
    ("no-acquisition-date", tiny_config(split=HELD_OUT, candidates=[{"name": "f2", "dates": 2, **FOREST}]),
     ("no acquisition date", "dates = 2")),
    ("unreadable-date", tiny_config(split={"mode": "leave-one-date-out", "holdout": "a"},
                                    candidates=[{"name": "f2", "dates": 2, **FOREST}],
                                    images={"files": [{"path": str(TARGET), "date": "a", "acquired": "last summer"},
                                                      {"path": str(PREVIOUS), "date": "b",
                                                       "acquired": "2015-08-30T10:05:47Z"}]}),
     ("acquired = 'last summer' is not an ISO 8601 date",)),
    ("three-dates", dated_config(split=HELD_OUT, candidates=[{"name": "f3", "dates": 3, **FOREST}]),
     ("candidates.0.dates",)),
    ("no-feature", dated_config(split=HELD_OUT, candidates=[{"name": "f", "kind": "random-forest", "bands": []}]),
     ("candidate 'f'", "bands = [] keeps no feature")),
    ("unknown-band", dated_config(split=HELD_OUT, candidates=[{"name": "f", **FOREST, "bands": ["B99"]}]),
     ("candidate bands ['B99']",)),
    ("bands-on-a-network", dated_config(split=HELD_OUT, candidates=[{"name": "n", "kind": "network",
                                                                      "bands": ["B02"]}]),
     ("candidate 'n'", "bands is for pixel classifiers")),
])
def test_bad_multi_date_config(name: str, config: dict, words: tuple[str, ...], tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOVIGIE_DATA_DIR", str(tmp_path / "data"))
    path = write_toml(tmp_path / f"{name}.toml", config)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(path), "--out", str(out), "--device", "cpu", "--quiet"])
    assert_one_error_line(result, *words)
    assert not out.exists()  # refused before any file is written


def test_previous_pass_values_are_checked_like_the_input(bundle: ModelBundle, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A previous pass in digital numbers (reflectance x 10000) is refused, naming it, as the input would be."""
    monkeypatch.setenv("GEOVIGIE_DATA_DIR", str(tmp_path / "data"))
    with rasterio.open(PREVIOUS) as src:
        profile, names, data = dict(src.profile), src.descriptions, src.read()
    path = tmp_path / "digital-numbers.tif"
    with rasterio.open(path, "w", **{**profile, "dtype": "uint16"}) as dst:
        dst.write(np.round(data * 10000).astype(np.uint16))
        dst.descriptions = names
    result = _predict(tmp_path, bundle.path, "--previous", str(path))
    assert_one_error_line(result, "digital-numbers.tif", "digital numbers")
