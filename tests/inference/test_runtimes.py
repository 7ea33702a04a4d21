"""Runtimes the workers can use: ONNX Runtime (chosen by `auto` when the bundle has an export) and torch options."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from geovigie.inference import PredictOptions, predict
from geovigie.models import NETWORK_BUNDLE, load_bundle
from tests.conftest import SLOVENIA_SCENE


def _classes(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def test_auto_runtime_uses_the_onnx_export_and_agrees_with_torch(dask_client, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from geovigie.models import export_onnx

    copy = tmp_path / "bundle"
    shutil.copytree(NETWORK_BUNDLE, copy)
    export_onnx(copy)
    kwargs = {"client": dask_client, "progress": False, "product_level": "L1C", "bundle": copy}
    torch_run = predict(SLOVENIA_SCENE, tmp_path / "t", PredictOptions(64, 16, 4, "cpu", runtime="torch"), **kwargs)
    auto_run = predict(SLOVENIA_SCENE, tmp_path / "a", PredictOptions(64, 16, 4, "cpu"), **kwargs)
    with rasterio.open(auto_run.classes_path) as a, rasterio.open(torch_run.classes_path) as t:
        assert a.tags()["GEOVIGIE_RUN"] != t.tags()["GEOVIGIE_RUN"]  # the runtime is part of the run signature
    assert (_classes(auto_run.classes_path) == _classes(torch_run.classes_path)).mean() > 0.999
    # without an export, auto is torch: the same signature as an explicit torch run
    from geovigie.models import write_card

    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(copy / "weights.safetensors", bare / "weights.safetensors")
    write_card(bare, load_bundle(copy).card.model_copy(update={"onnx": None}))
    plain = predict(SLOVENIA_SCENE, tmp_path / "p", PredictOptions(64, 16, 4, "cpu"), **{**kwargs, "bundle": bare})
    with rasterio.open(plain.classes_path) as p, rasterio.open(torch_run.classes_path) as t:
        assert p.tags()["GEOVIGIE_RUN"] == t.tags()["GEOVIGIE_RUN"]


@pytest.mark.parametrize("option", [{"channels_last": True}, {"quantise": True}])
def test_torch_options_give_the_same_classes(option: dict, dask_client, tmp_path: Path) -> None:
    base = predict(SLOVENIA_SCENE, tmp_path / "b", PredictOptions(64, 16, 4, "cpu", runtime="torch"),
                   client=dask_client, progress=False, product_level="L1C", bundle=NETWORK_BUNDLE)
    other = predict(SLOVENIA_SCENE, tmp_path / "o", PredictOptions(64, 16, 4, "cpu", runtime="torch", **option),
                    client=dask_client, progress=False, product_level="L1C", bundle=NETWORK_BUNDLE)
    assert (_classes(other.classes_path) == _classes(base.classes_path)).mean() > 0.999
