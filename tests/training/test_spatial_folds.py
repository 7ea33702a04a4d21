"""Spatial folds on the shipped Landsat NC labels (one date): whole polygons are held out, once each, never trained
on nor within the buffer of training pixels."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from geovigie.training import load_config, load_scenes, run_experiment, spatial_split
from geovigie.training._select import select
from geovigie.training._split import dilate
from geovigie.training._targets import IGNORE
from tests.conftest import REPO

NC = REPO / "training" / "configs" / "landcover-landsat7-nc.toml"


@pytest.fixture(scope="module")
def nc():  # noqa: ANN201
    config = load_config(NC)
    scenes, _ = load_scenes(config)
    return config, scenes


def _folds(config, scenes, seed: int | None = None) -> list:  # noqa: ANN001
    sp = config.split
    return [spatial_split(scenes, mode=sp.mode, block_px=sp.block_px, buffer_px=sp.buffer_px,
                          val_fraction=sp.val_fraction, test_fraction=sp.test_fraction,
                          seed=sp.seed if seed is None else seed, holdout=str(k), folds=sp.folds,
                          class_names=config.class_names)[scenes[0].name] for k in range(1, sp.folds + 1)]


def test_every_labelled_polygon_is_held_out_once_and_whole(nc) -> None:  # noqa: ANN001
    config, scenes = nc
    scene = scenes[0]
    labelled = scene.labels != IGNORE
    folds = _folds(config, scenes)
    held = np.stack([f.test & labelled for f in folds])
    assert held.sum(axis=0).max() == 1  # disjoint
    assert (held.sum(axis=0) == 1).sum() == labelled.sum() > 2000  # and complete: every labelled pixel scored once
    polygons, count = ndimage.label(labelled, structure=np.ones((3, 3), dtype=bool))
    fold_of = np.argmax(held, axis=0)
    for k in range(1, count + 1):  # a polygon is never split between folds
        assert len(np.unique(fold_of[polygons == k])) == 1
    assert all(f.space and not f.heldout for f in folds)


def test_training_pixels_keep_clear_of_held_out_and_validation_polygons(nc) -> None:  # noqa: ANN001
    config, scenes = nc
    labelled = scenes[0].labels != IGNORE
    buffer = config.split.buffer_px
    for fold in _folds(config, scenes):
        assert not (fold.train & dilate(fold.test, buffer)).any()
        assert not (fold.train & dilate(fold.val & labelled, buffer)).any()
        assert not (fold.val & fold.test).any()
        assert (fold.train & labelled).sum() > (fold.test & labelled).sum() > 0
        assert (fold.val & labelled).any()


def test_folds_are_seeded(nc) -> None:  # noqa: ANN001
    config, scenes = nc
    first = [f.test for f in _folds(config, scenes)]
    again = [f.test for f in _folds(config, scenes)]
    other = [f.test for f in _folds(config, scenes, seed=config.split.seed + 1)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_candidates_are_chosen_on_held_out_polygons_not_validation() -> None:
    row = {"overall_accuracy": 0.5, "miou": 0.3, "pixels": 10}
    metrics = {"validation": {"a": row, "b": {**row, "miou": 0.9}},
               "folds_heldout_space": {"a": row, "b": {**row, "miou": 0.1}, "majority_class": row}}
    winner, table = select(metrics, ["a", "b"], "miou")
    assert (winner, table["set"]) == ("a", "folds_heldout_space") and "majority_class" in table["table"]
    with pytest.raises(ValueError, match="held-out"):
        select({"validation": metrics["validation"]}, ["a", "b"], "miou")


def test_a_spatial_fold_run_chooses_on_the_mean_of_held_out_polygons(tmp_path) -> None:  # noqa: ANN001
    """Two small forests through `run_experiment` on the NC config: every fold scored on its held-out polygons, the
    winner chosen on their mean and shipped as a pixel classifier."""
    config = load_config(NC).model_copy(deep=True)
    config.candidates = [c.model_copy(update={"trees": 5}) for c in config.candidates
                         if c.name in ("forest_bands", "forest_3x3_indices")]
    config.output.onnx = False
    result = run_experiment(config, tmp_path / "run", device="cpu", progress=False)
    folds = result.metrics["folds_heldout_space"]
    assert set(folds) == {"forest_bands", "forest_3x3_indices", "majority_class"}
    assert sorted(folds["majority_class"]["per_fold"]) == ["1", "2", "3", "4", "5"]
    per_fold = folds["forest_bands"]["per_fold"]
    assert sum(f["pixels"] for f in per_fold.values()) == folds["forest_bands"]["pixels"] > 2000
    selection = result.metrics["selection"]
    winner = max(["forest_bands", "forest_3x3_indices"], key=lambda n: folds[n]["miou"])
    if abs(folds["forest_bands"]["miou"] - folds["forest_3x3_indices"]["miou"]) > config.selection.tolerance:
        assert selection["winner"] == winner
    assert result.metrics["shipped_model"] == selection["winner"] and result.bundle.card.kind == "pixel-classifier"
    assert "spatial-folds" in result.bundle.card.provenance["split"]
