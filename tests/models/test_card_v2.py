"""Card format 2: the shipped format 1 card still loads; new fields round-trip; corrupt cards list every problem."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from geovigie.errors import BundleError
from geovigie.models import (
    CARD_FORMAT_VERSION,
    NETWORK_BUNDLE,
    Calibration,
    ModelCard,
    load_bundle,
    save_bundle,
    write_card,
)

V1_CARD = Path(__file__).parent / "data" / "card_v1.json"
"""The shipped bundle's format 1 card as committed before format 2, kept here when the shipped bundle is retrained."""


def test_v1_card_loads_as_format_1(tmp_path: Path) -> None:
    raw = json.loads(V1_CARD.read_text())
    assert "format_version" not in raw and "calibration" not in raw, "a format 1 card"
    shutil.copy(V1_CARD, tmp_path / "card.json")
    shutil.copy(NETWORK_BUNDLE / "weights.safetensors", tmp_path / "weights.safetensors")
    card = load_bundle(tmp_path).card
    assert card.format_version == "1"
    assert card.calibration is None and card.onnx is None and card.config == {} and card.label_mapping == {}
    assert card.temperature == 1.0
    assert card.metrics["validation"]["pixels"] == raw["metrics"]["validation"]["pixels"]
    assert load_bundle().card.format_version in ("1", "2")  # the shipped bundle, whatever its format


def test_v2_fields_round_trip(tmp_path: Path) -> None:
    bundle = load_bundle()
    card = bundle.card.model_copy(update={
        "config": {"task": "landcover", "epochs": 3, "split": {"kind": "blocks", "block": 20}},
        "label_mapping": {"1": 0, "2": 1, "3": 2, "4": 3, "8": 4, "0": 255},
        "calibration": Calibration(temperature=1.42, ece_before=0.049, ece_after=0.017, fitted_on="validation blocks",
                                   pixels=9468),
    })
    saved = save_bundle(tmp_path / "v2", bundle.load_network(), card)
    raw = json.loads((tmp_path / "v2" / "card.json").read_text())
    assert raw["format_version"] == CARD_FORMAT_VERSION == "2"
    again = load_bundle(tmp_path / "v2").card
    assert again == saved.card
    assert again.config["split"]["block"] == 20
    assert again.label_mapping["8"] == 4
    assert again.temperature == 1.42
    assert (tmp_path / "v2" / "item.json").exists()


def test_label_mapping_to_unknown_classes_is_refused() -> None:
    card = load_bundle().card.model_dump()
    card["label_mapping"] = {"1": 0, "9": 7}
    with pytest.raises(ValueError, match=r"\{'9': 7\}.*0\.\.4.*255"):
        ModelCard.model_validate(card)


def test_corrupt_card_lists_every_problem(tmp_path: Path) -> None:
    folder = tmp_path / "corrupt"
    shutil.copytree(NETWORK_BUNDLE, folder)
    raw = json.loads((folder / "card.json").read_text())
    raw["pixel_size_m"] = "ten"
    del raw["bands"]
    raw["calibration"] = {"temperature": -1}
    (folder / "card.json").write_text(json.dumps(raw))
    with pytest.raises(BundleError) as caught:
        load_bundle(folder)
    message = str(caught.value)
    assert "3 problem(s)" in message
    for where in ("missing key 'bands'", "pixel_size_m:", "calibration.temperature:"):
        assert where in message, message
    assert str(folder / "card.json") in message


def test_card_that_is_not_json_or_from_the_future(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    shutil.copytree(NETWORK_BUNDLE, folder)
    (folder / "card.json").write_text("{not json")
    with pytest.raises(BundleError, match="not JSON"):
        load_bundle(folder)
    raw = json.loads((NETWORK_BUNDLE / "card.json").read_text())
    (folder / "card.json").write_text(json.dumps({**raw, "format_version": "3"}))
    with pytest.raises(BundleError, match="format_version .3. is not one this geovigie reads.*upgrade"):
        load_bundle(folder)


def test_write_card_upgrades_to_format_2_without_touching_weights(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    shutil.copytree(NETWORK_BUNDLE, folder)
    weights = (folder / "weights.safetensors").read_bytes()
    bundle = write_card(folder, load_bundle(folder).card)
    assert bundle.card.format_version == "2"
    assert load_bundle(folder).card.format_version == "2"
    assert (folder / "weights.safetensors").read_bytes() == weights
    load_bundle(folder).load_network()  # the recorded hash still matches
