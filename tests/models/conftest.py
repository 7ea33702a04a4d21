"""Real data for the model tests: the Slovenia scenes and labels, and a copy of the shipped bundle exported to ONNX."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio

from tests.conftest import DATA

SLOVENIA_DIR = DATA / "s2-l1c-slovenia"
TRAIN_SCENES = (1, 2, 3)
"""The shipped bundle was trained on scenes 1-3 (scene 0 is cloudy)."""


@dataclass(frozen=True)
class Slovenia:
    images: np.ndarray
    """Raw L1C reflectance of scenes 1-3, float32 (3, 13, 101, 100)."""
    labels: np.ndarray
    """Class values of the shipped bundle (255: no label), uint8 (3, 101, 100): the same labels for every scene."""


@pytest.fixture(autouse=True)
def network_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the shipped U-Net bundle (weights, ONNX export, MLM item, calibration): they pin the
    default of `load_bundle()` to it (the default of `predict` is a pixel classifier since v3; see test_pixel.py)."""
    import geovigie.models._bundle as bundles

    monkeypatch.setattr(bundles, "DEFAULT_BUNDLE", bundles.NETWORK_BUNDLE)


@pytest.fixture(scope="session")
def slovenia() -> Slovenia:
    from geovigie.catalog.samples import SLOVENIA_LABELS

    images = []
    for index in TRAIN_SCENES:
        with rasterio.open(SLOVENIA_DIR / f"reference_scene_{index}.tif") as src:
            images.append(src.read().astype(np.float32))
    with rasterio.open(SLOVENIA_DIR / "lulc_mask.tif") as src:
        raw = src.read(1)
    labels = np.full(raw.shape, 255, dtype=np.uint8)
    for class_value, source in enumerate(SLOVENIA_LABELS):
        labels[raw == source.value] = class_value
    return Slovenia(np.stack(images), np.stack([labels] * len(TRAIN_SCENES)))


@pytest.fixture(scope="session")
def onnx_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shipped bundle with its ONNX export (exported once per session)."""
    from geovigie.models import NETWORK_BUNDLE, export_onnx

    folder = tmp_path_factory.mktemp("onnx") / "bundle"
    shutil.copytree(NETWORK_BUNDLE, folder)
    export_onnx(folder)
    return folder


@pytest.fixture(scope="session")
def plain_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shipped bundle without its ONNX export (weights and card only)."""
    from geovigie.models import NETWORK_BUNDLE, load_bundle, write_card

    folder = tmp_path_factory.mktemp("plain") / "bundle"
    folder.mkdir()
    shutil.copy(NETWORK_BUNDLE / "weights.safetensors", folder / "weights.safetensors")
    write_card(folder, load_bundle(NETWORK_BUNDLE).card.model_copy(update={"onnx": None}))
    return folder
