"""Every shipped bundle shows the table it was chosen from (issue 21): its card holds `metrics.selection` with every
candidate and the majority class, the shipped model is the winner that the table and the config's rule give (or
the card states its scope, e.g. networks only, and the overall winner), and neither the card nor its STAC item
records a path of a developer's checkout."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from geovigie.models import DEFAULT_BUNDLE, NETWORK_BUNDLE, check_weights, load_bundle

BUNDLES = sorted(p for p in DEFAULT_BUNDLE.parent.iterdir() if (p / "card.json").is_file())
PENDING: dict[str, str] = {}  # bundle name -> why its card cannot pass yet (an expected failure)
ABSOLUTE = re.compile(r"^(/|~|[A-Za-z]:[\\/])")


def _params() -> list[Any]:
    return [pytest.param(p, id=p.name, marks=[pytest.mark.xfail(strict=True, reason=PENDING[p.name])]
                         if p.name in PENDING else []) for p in BUNDLES]


def _strings(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{where}[{index}]")
    elif isinstance(value, str):
        yield where, value


def _rule_winner(table: dict[str, dict], names: list[str], metric: str, tolerance: float) -> str:
    """The winner the selection rule gives on the table: the best `metric` (then the other score), or with a
    tolerance the first listed within it of the best."""
    other = "overall_accuracy" if metric == "miou" else "miou"
    best = max(names, key=lambda n: (table[n][metric] or 0.0, table[n][other] or 0.0, -names.index(n)))
    if not tolerance:
        return best
    return next(n for n in names if (table[n][metric] or 0.0) >= (table[best][metric] or 0.0) - tolerance)


def test_the_default_and_the_network_bundle_are_shipped() -> None:
    assert DEFAULT_BUNDLE in BUNDLES and NETWORK_BUNDLE in BUNDLES
    assert load_bundle(DEFAULT_BUNDLE).card.metrics["selection"].get("scope") is None  # the default: every kind
    assert load_bundle(NETWORK_BUNDLE).card.architecture is not None  # the network: a PyTorch U-Net


@pytest.mark.parametrize("folder", _params())
def test_every_shipped_card_shows_the_table_it_was_chosen_from(folder: Path) -> None:
    bundle = load_bundle(folder)
    metrics = bundle.card.metrics
    selection = metrics.get("selection")
    assert selection is not None, f"{folder.name}: no metrics.selection"
    table, shipped = selection["table"], metrics["shipped_model"]
    assert "majority_class" in table and shipped in table
    assert selection["set"] in ("folds_heldout_test_blocks", "folds_heldout_space", "heldout_test_blocks",
                                "heldout")  # never validation (`folds_heldout_space`: one date, polygons held out)
    assert shipped == selection["winner"]
    candidates = (bundle.card.config or {}).get("candidates", [])
    assert [c["name"] for c in candidates if c["name"] in table] == [n for n in table if n != "majority_class"]
    scope = selection.get("scope")
    kinds = scope["kinds"] if scope else None
    eligible = [c["name"] for c in candidates if kinds is None or c["kind"] in kinds]
    every = [c["name"] for c in candidates]
    rule = (selection["metric"], selection.get("tolerance", 0.0))
    assert _rule_winner(table, eligible, *rule) == shipped  # the table and the rule give the shipped model
    if scope is not None:  # a scoped choice says what won the whole table, and that it is not the shipped model
        assert scope["overall_winner"] == _rule_winner(table, every, *rule)
        if scope["overall_winner"] != shipped:
            assert "not the best model" in selection["why"] and scope["overall_winner"] in selection["why"]
    assert shipped in selection["why"] and "majority_class" in selection["why"]
    for name in ("card.json", "item.json"):
        found = [(where, text) for where, text in _strings(json.loads((folder / name).read_text()))
                 if ABSOLUTE.match(text) or "/work/" in text]
        assert not found, f"{folder.name}/{name} records checkout paths: {found[:3]}"
    check_weights(bundle)  # the card's hashes hold (rewriting provenance touched no hashed file)

