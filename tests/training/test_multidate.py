"""Multi-date candidates: each image stacked with the previous pass of its area; no stack holding a held-out date
is trained on; an area's first pass is not predicted, and a candidate scored on fewer folds is never chosen."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from geovigie.cli import app
from geovigie.inference import PredictOptions, predict
from geovigie.models import load_bundle, load_predictor, mlm_item, normalise, normalise_scene
from geovigie.tiles import validate_offline
from geovigie.training import ConfigError, load_scenes, parse_config, run_experiment
from geovigie.training._hooks import CHECKPOINT
from geovigie.training._stacks import previous_passes, stacked_inputs
from tests._support.multidate import FOREST, dated_config, two_date_bundle
from tests.training.conftest import SLOVENIA_DIR


def test_previous_pass_follows_the_acquisition_dates_not_the_names() -> None:
    scenes, _ = load_scenes(parse_config(dated_config((0, 1, 2, 3)), "."))
    previous = {name: (p.name if p else None) for name, p in previous_passes(scenes).items()}
    assert previous == {"reference_scene_1": None, "reference_scene_0": "reference_scene_1",
                        "reference_scene_3": "reference_scene_0", "reference_scene_2": "reference_scene_3"}


def test_stacks_holding_a_held_out_date_are_not_trained_on() -> None:
    scenes, bands = load_scenes(parse_config(dated_config(), "."))
    ones = [np.ones(s.labels.shape, bool) for s in scenes]
    by_name = {s.name: s for s in scenes}
    for held, trained in (("reference_scene_1", {"reference_scene_2"}), ("reference_scene_2", {"reference_scene_3"}),
                          ("reference_scene_3", set())):
        images, masks, _ = stacked_inputs(scenes, ones, {held}, dates=2)
        assert set(images) == {"reference_scene_2", "reference_scene_3"}  # scene 1 is the first pass
        assert {s.name for s, m in zip(scenes, masks, strict=True) if m.any()} == trained - {held}
    images, _, _ = stacked_inputs(scenes, ones, set(), dates=2)
    stack = images["reference_scene_2"]
    assert stack.shape[0] == 2 * len(bands)
    np.testing.assert_array_equal(stack[len(bands):], by_name["reference_scene_3"].image)


def test_multi_date_candidate_is_reported_on_the_folds_it_can_be_scored_on_and_not_chosen(tmp_path: Path) -> None:
    config = parse_config(dated_config(
        split={"mode": "leave-one-date-out", "holdout": "all", "fold_epochs": 1},
        selection={"tolerance": 0.0},
        candidates=[{"name": "forest", **FOREST}, {"name": "forest_2dates", "dates": 2, **FOREST}]), ".")
    result = run_experiment(config, tmp_path / "run", device="cpu", progress=False)
    assert result is not None
    metrics = load_bundle(result.bundle.path).card.metrics
    held = metrics["folds_heldout_test_blocks"]
    per_fold = held["forest_2dates"]["per_fold"]
    # scene 1: no previous pass; scene 3: every stack holds it (3 + 1, 2 + 3); scene 2: trained on 3 + 1
    assert [f for f, v in per_fold.items() if v["pixels"]] == ["scene-2"]
    assert held["forest_2dates"]["folds_scored"] == 1 and held["forest"]["folds_scored"] == 3
    assert per_fold["scene-2"]["pixels"] == held["forest"]["per_fold"]["scene-2"]["pixels"]
    assert metrics["selection"]["winner"] == "forest"
    assert metrics["selection"]["not_eligible"] == {"forest_2dates": "scored on 1 of 3 held-out folds"}
    assert "(scored on 1 of 3 held-out folds: not eligible)" in metrics["selection"]["why"]
    assert metrics["folds"]["training_stacks"] == {  # what dropping the held-out date's stacks leaves per fold
        "scene-1": {"forest_2dates": ["reference_scene_2 + reference_scene_3"]},
        "scene-2": {"forest_2dates": ["reference_scene_3 + reference_scene_1"]},
        "scene-3": {"forest_2dates": []}}


def test_two_date_bundle_declares_its_inputs_and_runs_on_a_stack(tmp_path: Path) -> None:
    bundle = load_bundle(two_date_bundle(tmp_path).path)
    card = bundle.card
    assert card.dates == 2 and card.channels == 2 * len(card.bands) == len(card.normalisation.mean)
    assert [i.name for i in card.pixel.indices] == ["ndvi", "ndvi_previous"]
    assert "previous pass" in card.describe_dates()
    info = CliRunner().invoke(app, ["model", "info", str(bundle.path)])
    assert info.exit_code == 0 and json.loads(info.stdout)["inputs"].startswith("2 passes: the target pass, then")
    item = mlm_item(bundle)
    assert item.properties["mlm:input"][0]["input"]["shape"] == [-1, 26, -1, -1]
    assert "https://stac-extensions.github.io/mlm/v1.4.0/schema.json" in validate_offline(item)
    names = item.properties["mlm:input"][0]["bands"]
    assert names[13] == "B01_previous" and [b["name"] for b in item.assets["onnx"].extra_fields["eo:bands"]] == names
    scenes, _ = load_scenes(parse_config(dated_config(), "."))
    by_name = {s.name: s.image for s in scenes}
    stack = np.concatenate([normalise_scene(by_name["reference_scene_2"], card.scene_normalisation),
                            normalise_scene(by_name["reference_scene_3"], card.scene_normalisation)])
    logits = load_predictor(bundle, "cpu", runtime="onnx")(normalise(card, stack[None].copy()))[0]
    labels = scenes[1].labels
    keep = labels != 255
    accuracy = float((logits.argmax(0)[keep] == labels[keep]).mean())
    assert accuracy > 0.8  # scene 2 with its previous pass, never trained on (majority class: 0.76)
    with pytest.raises(ValueError, match="one mean and one std per input channel"):
        type(card)(**{**card.model_dump(), "dates": 1, "pixel": None, "kind": "network",
                      "architecture": {"name": "Unet"}})
    with pytest.raises(ValueError, match=r"\['ndvi_previous'\] name channels beyond the card's 13"):
        type(card)(**{**card.model_dump(), "dates": 1})


def test_multi_date_needs_acquisition_dates() -> None:
    config = parse_config(dated_config(split={"mode": "leave-one-date-out", "holdout": "scene-2"},
                                       candidates=[{"name": "f2", "dates": 2, **FOREST}]), ".")
    config.images.files[0].acquired = ""
    scenes, _ = load_scenes(config)
    with pytest.raises(ConfigError, match="no acquisition date"):
        previous_passes(scenes)
    scenes[0].acquired = "last summer"
    with pytest.raises(ConfigError, match="not an ISO 8601 date"):
        previous_passes(scenes)


def test_two_date_network_on_the_same_folds(tmp_path: Path, settings, dask_client) -> None:  # noqa: ANN001
    config = parse_config(dated_config(
        split={"mode": "leave-one-date-out", "holdout": "all", "fold_epochs": 1},
        train={"epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "chip_size": 32, "val_chips": 2},
        candidates=[{"name": "forest", **FOREST},
                    {"name": "network_2dates", "kind": "network", "dates": 2, "scene": "median-mad"}]), ".")
    result = run_experiment(config, tmp_path / "run", device="cpu", progress=False)
    assert result is not None
    metrics = load_bundle(result.bundle.path).card.metrics
    per_fold = metrics["folds_heldout_test_blocks"]["network_2dates"]["per_fold"]
    assert [f for f, v in per_fold.items() if v["pixels"]] == ["scene-2"]  # scene 3: no stack left, not trained
    stacks = metrics["folds"]["training_stacks"]
    assert stacks["scene-2"] == {"network_2dates": ["reference_scene_3 + reference_scene_1"]}
    folds = tmp_path / "run" / "folds"
    assert any((folds / "scene-2").rglob(CHECKPOINT)) and not any((folds / "scene-3").rglob(CHECKPOINT))
    assert metrics["selection"]["winner"] == "forest"
    network = parse_config(dated_config(split={"mode": "leave-one-date-out", "holdout": "scene-2"},
                                        train={"epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "chip_size": 32,
                                               "val_chips": 2},
                                        candidates=[{"name": "network_2dates", "kind": "network", "dates": 2}]), ".")
    shipped = run_experiment(network, tmp_path / "net", device="cpu", progress=False)
    assert shipped is not None
    card = load_bundle(shipped.bundle.path).card
    assert card.kind == "network" and card.dates == 2 and len(card.normalisation.mean) == 26
    first = next(iter(load_bundle(shipped.bundle.path).load_network().parameters()))
    assert first.shape[1] == 26  # the first convolution takes both passes
    out = predict(SLOVENIA_DIR / "reference_scene_2.tif", tmp_path / "out", PredictOptions.from_settings(settings),
                  bundle=shipped.bundle.path, client=dask_client, progress=False, product_level="L1C",
                  previous=SLOVENIA_DIR / "reference_scene_3.tif")
    with rasterio.open(out.classes_path) as src:
        assert (src.read(1) < 5).all()  # torch runtime, 26 channels, every pixel classified
