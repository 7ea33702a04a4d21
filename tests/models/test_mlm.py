"""The card as a STAC item with the Machine Learning Model extension, on the shipped bundle."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pystac
from pystac.extensions.mlm import MLMExtension

from geovigie.models import NETWORK_BUNDLE, Calibration, load_bundle, mlm_item, normalise, write_card
from tests.models.conftest import Slovenia

REQUIRED = ("mlm:name", "mlm:architecture", "mlm:framework", "mlm:tasks", "mlm:input", "mlm:output")
SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


def test_shipped_bundle_as_mlm_item() -> None:
    bundle = load_bundle()
    item = mlm_item(bundle)
    props = item.properties
    assert all(key in props for key in REQUIRED)
    assert MLMExtension.get_schema_uri() == "https://stac-extensions.github.io/mlm/v1.4.0/schema.json"
    assert MLMExtension.get_schema_uri() in item.stac_extensions
    mlm = MLMExtension.ext(item)
    assert mlm.mlm_name == bundle.card.name == "landcover-s2l1c-slovenia-unet"
    assert mlm.architecture == "Unet (tu-mobilenetv2_050 encoder)"
    assert mlm.tasks == ["semantic-segmentation"]
    assert mlm.framework == "PyTorch" and SEMVER.match(mlm.framework_version or "")
    assert mlm.total_parameters == sum(p.numel() for p in bundle.load_network().parameters())
    assert mlm.accelerator == "amd64" and mlm.accelerator_constrained is False
    assert mlm.pretrained is False and "mlm:pretrained_source" in props and props["mlm:pretrained_source"] is None
    (model_input,) = props["mlm:input"]
    assert model_input["bands"] == bundle.card.bands
    assert model_input["input"] == {"shape": [-1, 13, -1, -1], "dim_order": ["batch", "bands", "height", "width"],
                                    "data_type": "float32"}
    (output,) = props["mlm:output"]
    assert output["result"]["shape"] == [-1, 5, -1, -1]
    assert [c["name"] for c in output["classification:classes"]] == [c.name for c in bundle.card.classes]
    assert output["classification:classes"][1]["color_hint"] == "054907"
    temperature = bundle.card.temperature  # `geovigie train` fits one on validation blocks
    assert output["post_processing_function"] == (
        None if bundle.card.calibration is None
        else {"format": "python", "expression": f"scipy.special.softmax(logits / {temperature!r}, axis=1)"})
    provenance = bundle.card.provenance
    assert props["mlm:hyperparameters"]["batch_size"] == provenance["training"]["batch_size"]
    assert item.datetime is not None and item.datetime.isoformat() == provenance["trained_at"]
    assert (item.geometry is None) == ("bbox" not in provenance)  # a card without a training area has no geometry


def test_value_scaling_reproduces_the_card_normalisation(slovenia: Slovenia) -> None:
    bundle = load_bundle()
    scaling = mlm_item(bundle).properties["mlm:input"][0]["value_scaling"]
    assert [s["type"] for s in scaling] == ["z-score"] * 13
    raw = slovenia.images[0]
    mean = np.array([s["mean"] for s in scaling], dtype=np.float32)[:, None, None]
    std = np.array([s["stddev"] for s in scaling], dtype=np.float32)[:, None, None]
    np.testing.assert_allclose((raw - mean) / std, normalise(bundle.card, raw.copy()), rtol=1e-4, atol=1e-4)


def test_item_json_beside_the_card_round_trips(tmp_path: Path) -> None:
    bundle = load_bundle()
    card = bundle.card.model_copy(update={
        "calibration": Calibration(temperature=1.42, ece_before=0.049, ece_after=0.017),
        "provenance": {**bundle.card.provenance, "bbox": [14.5, 46.0, 14.52, 46.01]},
    })
    written = write_card(tmp_path, card)
    raw = json.loads((tmp_path / "item.json").read_text())
    item = pystac.Item.from_dict(raw)
    assert item.id == NETWORK_BUNDLE.name  # the autouse pin: the shipped U-Net
    assert item.bbox == [14.5, 46.0, 14.52, 46.01] and item.geometry is not None
    assert set(item.assets) == {"weights", "card", "onnx"}  # the shipped bundle has its ONNX export
    weights = item.assets["weights"]
    assert weights.href == "./weights.safetensors"
    assert "mlm:model" in (weights.roles or [])
    assert weights.extra_fields["mlm:artifact_type"] == "safetensors"
    assert weights.extra_fields["file:checksum"] == "1220" + written.card.weights_sha256
    assert item.assets["card"].href == "./card.json"
    assert "1.42" in raw["properties"]["mlm:output"][0]["post_processing_function"]["expression"]
    assert raw["properties"]["geovigie:calibration"]["ece_after"] == 0.017


def test_every_shipped_bundle_item_is_valid_against_the_official_mlm_schema() -> None:
    from geovigie.tiles import validate_offline

    shipped = Path(__file__).resolve().parents[2] / "models/bundles"
    folders = sorted(p.parent for p in shipped.glob("*/card.json"))
    assert len(folders) >= 2
    for folder in folders:
        item = mlm_item(load_bundle(folder))
        schemas = validate_offline(item)
        assert "https://stac-extensions.github.io/mlm/v1.4.0/schema.json" in schemas
        models = [a for a in item.assets.values() if "mlm:model" in (a.roles or [])]
        assert models and all([b["name"] for b in a.extra_fields["eo:bands"]] == item.properties["mlm:input"][0]
                               ["bands"] for a in models)


def test_mlm_properties_round_trip_through_stac_model() -> None:
    from stac_model.schema import MLModelProperties

    from geovigie.tiles import validate_offline

    item = mlm_item(load_bundle())
    fields = {k.removeprefix("mlm:"): v for k, v in item.properties.items() if k.startswith("mlm:")}
    parsed = MLModelProperties.model_validate(fields)
    dumped = parsed.model_dump(mode="json", by_alias=True, exclude_unset=True)
    for key in ("mlm:name", "mlm:architecture", "mlm:tasks", "mlm:framework", "mlm:total_parameters"):
        assert dumped[key] == item.properties[key]
    assert dumped["mlm:input"][0]["bands"] == item.properties["mlm:input"][0]["bands"]
    assert dumped["mlm:input"][0]["input"]["shape"] == [-1, 13, -1, -1]
    assert [c["name"] for c in dumped["mlm:output"][0]["classification:classes"]] == \
        [c["name"] for c in item.properties["mlm:output"][0]["classification:classes"]]
    again = item.to_dict()
    again["properties"].update(dumped)
    validate_offline(pystac.Item.from_dict(again))  # what stac-model writes back is still valid MLM 1.4
