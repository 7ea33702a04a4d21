"""Candidates trained on the same splits; the bundle keeps the winner on held-out dates, never on validation blocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from geovigie.models import load_bundle
from geovigie.training import ConfigError, parse_config, run_experiment
from geovigie.training._select import select
from tests.training.conftest import tiny_config


def _row(oa: float, miou: float) -> dict[str, float]:
    return {"overall_accuracy": oa, "miou": miou, "pixels": 100}


def test_selection_uses_the_held_out_set_never_the_validation_blocks() -> None:
    metrics = {"validation": {"net": _row(0.9, 0.8), "rf": _row(0.5, 0.3), "majority_class": _row(0.6, 0.1)},
               "heldout_test_blocks": {"net": _row(0.6, 0.2), "rf": _row(0.7, 0.4), "majority_class": _row(0.8, 0.15)},
               "heldout": {"net": _row(0.9, 0.9), "rf": _row(0.1, 0.1), "majority_class": _row(0.8, 0.15)}}
    winner, table = select(metrics, ["net", "rf"], "miou")
    assert winner == "rf" and table["set"] == "heldout_test_blocks"
    assert set(table["table"]) == {"net", "rf", "majority_class"}
    winner, _ = select(metrics, ["net", "rf"], "overall_accuracy")
    assert winner == "rf"  # the majority class is a reference, never the winner
    tie = {"heldout": {"a": _row(0.5, 0.3), "b": _row(0.5, 0.3)}}
    assert select(tie, ["a", "b"], "miou")[0] == "a"  # first listed on a tie
    with pytest.raises(ValueError, match="held-out dates or areas"):
        select({"validation": metrics["validation"]}, ["net", "rf"], "miou")


def test_candidates_need_held_out_dates_and_unique_names() -> None:
    candidates = [{"name": "rf", "kind": "random-forest"}]
    with pytest.raises(ConfigError, match="never on neighbouring blocks"):
        parse_config(tiny_config(candidates=candidates), ".")
    with pytest.raises(ConfigError, match="unique"):
        parse_config(tiny_config(split={"mode": "leave-one-date-out", "holdout": "scene-3"},
                                 candidates=candidates * 2), ".")


def test_small_config_ships_the_held_out_winner(tmp_path: Path) -> None:
    config = parse_config(tiny_config(
        split={"mode": "leave-one-date-out", "holdout": "all", "fold_epochs": 1},
        train={"epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "chip_size": 32, "val_chips": 2},
        candidates=[{"name": "network", "kind": "network"},
                    {"name": "forest", "kind": "random-forest", "trees": 6, "max_depth": 6, "indices": ["ndvi"]},
                    {"name": "boosted", "kind": "hist-gradient-boosting", "trees": 5, "max_depth": 3}]), ".")
    result = run_experiment(config, tmp_path / "run", device="cpu", progress=False)
    assert result is not None
    card = load_bundle(result.bundle.path).card
    selection = card.metrics["selection"]
    held = card.metrics["folds_heldout_test_blocks"]
    assert selection["set"] == "folds_heldout_test_blocks"
    assert set(held) == {"network", "forest", "boosted", "majority_class"}
    assert len(held["forest"]["per_fold"]) == 3  # every date held out in turn, the same folds for all
    assert held["forest"]["pixels"] == held["network"]["pixels"] == held["boosted"]["pixels"]
    best = max(("network", "forest", "boosted"), key=lambda n: (held[n]["miou"], held[n]["overall_accuracy"]))
    assert selection["winner"] == best == card.metrics["shipped_model"]
    assert card.kind == ("network" if best == "network" else "pixel-classifier")
    assert f"{best} has the best miou on folds_heldout_test_blocks" in card.limitations
    for name in ("network", "forest", "boosted", "majority_class"):
        assert name in selection["why"]


def test_a_tolerance_gives_a_near_tie_to_the_first_listed_candidate() -> None:
    metrics = {"heldout": {"fast": _row(0.80, 0.263), "slow": _row(0.81, 0.266), "poor": _row(0.9, 0.2)}}
    assert select(metrics, ["fast", "slow", "poor"], "miou")[0] == "slow"
    winner, table = select(metrics, ["fast", "slow", "poor"], "miou", tolerance=0.01)
    assert winner == "fast" and table["best"] == "slow" and table["tolerance"] == 0.01
    assert select(metrics, ["fast", "slow", "poor"], "miou", tolerance=0.002)[0] == "slow"  # the boundary
    assert select(metrics, ["poor", "slow"], "miou", tolerance=0.01)[0] == "slow"  # never below the tolerance


def test_network_and_forest_variants_with_scene_normalisation_share_the_folds(tmp_path: Path) -> None:
    forest = {"kind": "random-forest", "trees": 6, "max_depth": 6, "indices": ["ndvi"]}
    config = parse_config(tiny_config(
        split={"mode": "leave-one-date-out", "holdout": "all", "fold_epochs": 1},
        train={"epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "chip_size": 32, "val_chips": 2},
        selection={"tolerance": 0.1},
        candidates=[{"name": "network", "kind": "network"},
                    {"name": "network_mad", "kind": "network", "scene": "median-mad",
                     "augment": {"gain": 0.3, "offset": 0.5, "haze": 0.5}},
                    {"name": "forest_mad", "scene": "median-mad", **forest},
                    {"name": "forest_match", "scene": "histogram-match", **forest}]), ".")
    result = run_experiment(config, tmp_path / "run", device="cpu", progress=False)
    assert result is not None
    card = load_bundle(result.bundle.path).card
    held = card.metrics["folds_heldout_test_blocks"]
    names = ["network", "network_mad", "forest_mad", "forest_match"]
    assert set(held) == {*names, "majority_class"}
    assert len({held[n]["pixels"] for n in names}) == 1
    best = max(held[n]["miou"] for n in names)
    expected = next(n for n in names if held[n]["miou"] >= best - 0.1)
    assert card.metrics["selection"]["winner"] == expected == card.metrics["shipped_model"]
    method = {"network": None, "network_mad": "median-mad", "forest_mad": "median-mad",
              "forest_match": "histogram-match"}[expected]
    assert (card.scene_normalisation.method if card.scene_normalisation else None) == method
    assert (tmp_path / "run" / "folds" / "scene-1" / "candidates" / "network_mad").is_dir()  # its own checkpoint
