"""The shipped Landsat 7 NC bundle (v2): its card holds the spatial-fold table it was chosen from, and `geovigie
predict` on the shipped NC scene gives the card's classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from geovigie.cli import app
from geovigie.models import load_bundle
from tests.conftest import DATA, REPO

BUNDLE = REPO / "models" / "bundles" / "landcover-landsat7-nc-v2"
NC = DATA / "landsat7-landcover-nc"
BANDS = ["B1", "B2", "B3", "B4", "B5", "B7"]
NODATA = -99999.0


def test_card_shows_the_spatial_fold_table_it_was_chosen_from() -> None:
    card = load_bundle(BUNDLE).card
    metrics, selection = card.metrics, card.metrics["selection"]
    candidates = [c["name"] for c in card.config["candidates"]]
    assert selection["set"] == metrics["primary_set"] == "folds_heldout_space"
    assert set(selection["table"]) == {*candidates, "majority_class"}
    assert selection["winner"] == metrics["shipped_model"]
    rows = selection["table"]
    best = max(rows[n]["miou"] for n in candidates)
    first_within = next(n for n in candidates if rows[n]["miou"] >= best - selection["tolerance"])
    assert selection["winner"] == first_within
    assert rows[selection["winner"]]["miou"] > rows["majority_class"]["miou"]
    folds = metrics["folds_heldout_space"]
    assert len(folds["majority_class"]["per_fold"]) == card.config["split"]["folds"] == 5
    pixels = {n: r["pixels"] for n, r in folds.items()}
    assert len(set(pixels.values())) == 1 and next(iter(pixels.values())) > 2000  # same held-out pixels for all
    assert "nothing is held out in time" in card.limitations
    assert "spatial-folds" in card.provenance["split"]


@pytest.fixture(scope="module")
def nc_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped NC scene's six single-band files stacked into one raster (band 7's nodata made -99999)."""
    layers = []
    for band in (10, 20, 30, 40, 50, 70):
        with rasterio.open(NC / f"lsat7_2000_{band}.tif") as src:
            layers.append(src.read(1, masked=True).astype(np.float32).filled(NODATA))
            profile = src.profile
    path = tmp_path_factory.mktemp("nc") / "lsat7_2000.tif"
    with rasterio.open(path, "w", **{**profile, "count": 6, "dtype": "float32", "nodata": NODATA}) as dst:
        dst.write(np.stack(layers))
        dst.descriptions = tuple(BANDS)
    return path


def test_predict_with_the_nc_bundle_gives_the_cards_classes(nc_scene: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOVIGIE_DATA_DIR", str(tmp_path / "data"))
    bundle = load_bundle(BUNDLE)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["predict", str(nc_scene), "--out", str(out), "--bundle", str(BUNDLE)])
    assert result.exit_code == 0, result.output
    with rasterio.open(next(out.glob("*_classes.tif"))) as src:
        classes, colormap, nodata = src.read(1), src.colormap(1), src.nodata
    with rasterio.open(nc_scene) as src:
        missing = (src.read() == NODATA).any(axis=0)
    with rasterio.open(NC / "landsat96_labelled_pixels.tif") as src:
        source = src.read(1)
    card = bundle.card
    values = {c.value for c in card.classes}
    assert set(np.unique(classes[~missing]).tolist()) == values  # every class of the card, and only those
    assert (classes[missing] == nodata).all()
    for c in card.classes:
        assert "#" + "".join(f"{v:02x}" for v in colormap[c.value][:3]) == c.color.lower()
    labelled = ~missing & (source > 0) & (source != 2)  # agriculture (2) is not a class of the card
    mapping = {int(k): v for k, v in card.label_mapping.items()}
    truth = np.array([mapping[int(v)] for v in source[labelled]])
    accuracy = float((classes[labelled] == truth).mean())
    majority = card.metrics["folds_heldout_space"]["majority_class"]["overall_accuracy"]
    assert accuracy > majority  # the bundle saw these polygons: far above always answering the largest class
