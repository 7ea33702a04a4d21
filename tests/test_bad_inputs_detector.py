"""Bad input to `geovigie diagnose dumps` on a detector's output (`predict`'s multi-band probability COG, its class
COG, a bundle card): one `error:` line naming the problem, exit code 2, no traceback, nothing left behind.

The layers are the real IGN LiDAR HD height stand-in of Montpellier (height / 10 m as a probability) laid out the
way `predict` writes them (bands per class, described or not, tagged with a bundle or not); the cards are written
here with only what `dumps` reads (name, version, classes, label mapping, provenance).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from tests._support.figures import assert_fails_cleanly
from tests._support.lidar import write_lidar_layers

TAGGED = "dump-sites-feedback@1"


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    words: tuple[str, ...]


def _layer(path: Path, bands: np.ndarray, transform: Affine, names: list[str] | None,
           bundle: str | None = None) -> None:
    with rasterio.open(path, "w", driver="GTiff", width=bands.shape[2], height=bands.shape[1], count=len(bands),
                       dtype=bands.dtype, crs="EPSG:2154", transform=transform, nodata=255) as dst:
        dst.write(bands)
        if names:
            dst.descriptions = tuple(names)
        if bundle:
            dst.update_tags(GEOVIGIE_BUNDLE=bundle)


def _card(folder: Path, name: str = "dump-sites-feedback", version: str = "1") -> None:
    folder.mkdir()
    (folder / "card.json").write_text(json.dumps({
        "name": name, "version": version, "label_mapping": {"false_alarm": 0, "confirmed": 1, "cleaned": 255},
        "classes": [{"value": 0, "name": "background", "color": "#a0a0a0"},
                    {"value": 1, "name": "dump", "color": "#d7301f"}],
        "provenance": {"labels": {"field_records_learned_from": 15}}}))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("detector-bad")
    stand_in = write_lidar_layers(folder)["probability"]
    with rasterio.open(stand_in) as src:
        dump, transform = src.read(1), src.transform
    background = np.where(dump <= 250, 250 - dump, 255).astype(np.uint8)
    two = np.stack([background, dump])
    _layer(folder / "unnamed.tif", two, transform, None)
    _layer(folder / "named.tif", two, transform, ["background", "dump"], TAGGED)
    _layer(folder / "three.tif", np.stack([background, dump, dump]), transform, ["background", "dump", "rubble"])
    _layer(folder / "float.tif", two.astype("float32") / 250, transform, ["background", "dump"])
    classes = np.where(dump <= 250, (dump >= 125).astype(np.uint8), 255).astype(np.uint8)[None]
    _layer(folder / "classes.tif", classes, transform, ["class"])
    _card(folder / "bundle")
    _card(folder / "other-bundle", "other", "2")
    (folder / "empty-bundle").mkdir()
    return folder


def _dumps(layer: str, *extra: str) -> tuple[str, ...]:
    return ("diagnose", "dumps", f"{{in}}/{layer}", "--watch", "w", "--date", "2024-05-01", *extra)


CASES = {
    "unnamed-bands": Case(_dumps("unnamed.tif"), ("unnamed.tif", "2 bands and none named", "--class-name",
                                                  "--bundle")),
    "unnamed-bands-with-name": Case(_dumps("unnamed.tif", "--class-name", "dump"),
                                    ("unnamed.tif", "2 bands and none named", "--bundle")),
    "class-not-in-layer": Case(_dumps("named.tif", "--class-name", "decharge"),
                               ("named.tif", "no class 'decharge'", "'background', 'dump'")),
    "several-classes-unnamed": Case(_dumps("three.tif"), ("three.tif", "3 classes", "'rubble'", "--class-name")),
    "float-probability": Case(_dumps("float.tif"), ("float.tif", "float32", "uint8")),
    "name-and-value": Case(_dumps("classes.tif", "--class-name", "dump", "--class-value", "1"),
                           ("classes.tif", "by name or by value, not both")),
    "class-map-unnamed": Case(_dumps("classes.tif"), ("classes.tif", "not named", "--class-value", "--bundle")),
    "class-map-name-missing": Case(_dumps("classes.tif", "--bundle", "{in}/bundle", "--class-name", "tas"),
                                   ("no class 'tas'", "'background', 'dump'")),
    "class-value-on-bands": Case(_dumps("named.tif", "--class-value", "1"), ("named.tif", "2 bands",
                                                                            "a class map has one")),
    "validated-not-in-card": Case(_dumps("named.tif", "--bundle", "{in}/bundle", "--validated"),
                                  ("validated", TAGGED, "not validated on held-out field labels")),
    "validated-without-card": Case(_dumps("named.tif", "--validated"), ("validated", TAGGED, "--bundle")),
    "card-of-another-bundle": Case(_dumps("named.tif", "--bundle", "{in}/other-bundle"),
                                   ("named.tif", f"predicted by {TAGGED}", "other@2")),
    "bundle-without-card": Case(_dumps("named.tif", "--bundle", "{in}/empty-bundle"), ("empty-bundle",
                                                                                     "no model card")),
    "threshold-zero": Case(_dumps("named.tif", "--threshold", "0"), ("threshold 0",)),
    "layer-missing": Case(_dumps("nothing.tif"), ("nothing.tif",)),
}



@pytest.mark.parametrize("name", list(CASES))
def test_bad_detector_input_gives_one_error_line(name: str, inputs: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[name]
    assert_fails_cleanly(case.args, case.words, inputs, tmp_path, monkeypatch)
