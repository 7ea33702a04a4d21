from pathlib import Path

import pytest
import torch

from geovigie.errors import BandMismatchError, ForcedMismatchWarning, InputNotFoundError
from geovigie.models import Architecture, load_bundle, save_bundle

S2_13 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]


def test_shipped_bundle_card_is_complete() -> None:
    bundle = load_bundle()
    card = bundle.card
    assert card.bands == S2_13
    assert card.product_level == "L1C"
    assert [c.name for c in card.classes] == ["cultivated land", "forest", "grassland", "shrubland",
                                              "artificial surface"]
    assert len(card.normalisation.mean) == 13
    assert card.metrics["validation"][card.metrics["shipped_model"]]["pixels"] > 0
    assert "1 km2" in card.limitations
    assert (bundle.path / "weights.safetensors").stat().st_size < 10 * 1024 * 1024


def test_shipped_weights_match_the_card_hash() -> None:
    import hashlib

    bundle = load_bundle()
    digest = hashlib.sha256((bundle.path / "weights.safetensors").read_bytes()).hexdigest()
    assert digest == bundle.card.weights_sha256


def test_network_predicts_every_class_shape() -> None:
    bundle = load_bundle()
    net = bundle.load_network()
    with torch.inference_mode():
        out = net(torch.zeros(1, 13, 64, 64))
    assert out.shape == (1, 5, 64, 64)


def test_refuses_other_bands_order_and_level() -> None:
    bundle = load_bundle()
    with pytest.raises(BandMismatchError, match="missing"):
        bundle.check_compatible(S2_13[:10], "L1C", source="x.tif")
    swapped = S2_13[:]
    swapped[1], swapped[2] = swapped[2], swapped[1]
    with pytest.raises(BandMismatchError, match="another order"):
        bundle.check_compatible(swapped, "L1C", source="x.tif")
    with pytest.raises(BandMismatchError, match="product level L2A"):
        bundle.check_compatible(S2_13, "L2A", source="x.tif")
    bundle.check_compatible(["b1", "B2", "b03", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"],
                            "l1c", source="names are normalised")


def test_force_turns_refusal_into_warning() -> None:
    bundle = load_bundle()
    with pytest.warns(ForcedMismatchWarning):
        bundle.check_compatible(S2_13, "L2A", source="x.tif", force=True)


def test_save_and_reload_roundtrip(tmp_path: Path) -> None:
    bundle = load_bundle()
    small = bundle.card.model_copy(update={"architecture": Architecture(encoder="tu-mobilenetv2_050",
                                                                        decoder_channels=[16, 16, 16, 16, 16])})
    from geovigie.models import build_network

    net = build_network(small.architecture, 13, 5)
    saved = save_bundle(tmp_path / "b", net, small)
    again = load_bundle(tmp_path / "b")
    assert again.card.weights_sha256 == saved.card.weights_sha256 != ""
    reloaded = again.load_network()
    for (k, a), (_, b) in zip(net.state_dict().items(), reloaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_missing_bundle(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="card.json"):
        load_bundle(tmp_path)
