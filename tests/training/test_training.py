from pathlib import Path

import numpy as np
import pytest

from geovigie.models import Architecture, load_bundle
from geovigie.training import TrainConfig, block_split, confusion_matrix, scores, train_landcover_baseline
from geovigie.training._loop import class_weights


def test_block_split_is_spatial_and_buffered() -> None:
    train, val = block_split(101, 100, block=20, val_fraction=0.3, buffer=3, seed=7)
    assert not (train & val).any()
    assert 0.2 < val.mean() < 0.4
    rows, cols = np.nonzero(val)
    for r, c in list(zip(rows, cols, strict=True))[::50]:
        assert not train[max(0, r - 3) : r + 4, max(0, c - 3) : c + 4].any()
    again, _ = block_split(101, 100, block=20, val_fraction=0.3, buffer=3, seed=7)
    assert np.array_equal(train, again)


def test_metrics_from_a_known_confusion() -> None:
    truth = np.array([0, 0, 1, 1, 1, 255])
    pred = np.array([0, 1, 1, 1, 0, 0])
    matrix = confusion_matrix(truth, pred, 3)
    assert matrix.tolist() == [[1, 1, 0], [1, 2, 0], [0, 0, 0]]
    result = scores(matrix, ["a", "b", "c"])
    assert result["overall_accuracy"] == pytest.approx(3 / 5)
    assert result["per_class"]["a"]["iou"] == pytest.approx(1 / 3)
    assert result["per_class"]["b"]["iou"] == pytest.approx(2 / 4)
    assert result["per_class"]["c"]["iou"] is None
    assert result["miou"] == pytest.approx((1 / 3 + 1 / 2) / 2)


def test_class_weights_favour_rare_classes() -> None:
    labels = np.array([0] * 900 + [1] * 100 + [255] * 50)
    weights = class_weights(labels, 3)
    assert weights[1] > weights[0] > 0
    assert weights[2] == 0


def test_short_training_writes_an_honest_bundle(catalog_dir: Path, tmp_path: Path) -> None:
    tiny = Architecture(encoder="tu-mobilenetv2_050", decoder_channels=[16, 16, 16, 16, 16])
    bundle = train_landcover_baseline(catalog_dir, tmp_path / "bundle", config=TrainConfig(steps=4, batch_size=4),
                                      device="cpu", progress=False, architecture=tiny)
    card = load_bundle(tmp_path / "bundle").card
    assert card.product_level == "L1C"
    assert len(card.bands) == 13
    assert card.metrics["validation"]["pixels"] > 5000
    assert 0 <= card.metrics["validation"]["overall_accuracy"] <= 1
    assert card.provenance["catalog_items"] == ["slovenia-reference-scene-1", "slovenia-reference-scene-2",
                                                "slovenia-reference-scene-3"]
    assert "spatial blocks" in card.provenance["split"]
    assert bundle.load_network() is not None
