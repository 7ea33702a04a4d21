"""The bundle's files are hashed once per run, on the client; workers load what the client verified."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from geovigie.errors import BundleError
from geovigie.inference import PredictOptions, predict
from geovigie.models import NETWORK_BUNDLE, _bundle, _predictor, load_bundle
from tests.conftest import SLOVENIA_SCENE


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_weights_are_hashed_once_per_run(runtime: str, dask_client, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    bundle_dir = tmp_path / "bundle"  # a folder of its own: no worker holds its network yet
    shutil.copytree(NETWORK_BUNDLE, bundle_dir)
    hashed: list[str] = []
    real = _bundle.sha256_of

    def counting(path: str | Path, cache_dir: Path | None = None) -> str:
        hashed.append(Path(path).name)
        return real(path, cache_dir)

    monkeypatch.setattr(_bundle, "sha256_of", counting)
    monkeypatch.setattr(_predictor, "sha256_of", counting)
    options = PredictOptions(tile_size=32, overlap=8, batch_size=2, device="cpu", runtime=runtime,
                             chunk_tiles=2)
    result = predict(SLOVENIA_SCENE, tmp_path / "out", options, bundle=load_bundle(bundle_dir), client=dask_client,
                     progress=False, product_level="L1C")
    assert result.tiles == 16 and not result.skipped  # 4 chunks of 2 x 2 tiles, one network load on the worker
    expected = ["weights.safetensors"] + (["model.onnx"] if runtime == "onnx" else [])
    assert hashed == expected


def test_a_corrupt_bundle_still_fails_before_any_work(tmp_path: Path) -> None:
    bundle_dir = tmp_path / "bundle"
    shutil.copytree(NETWORK_BUNDLE, bundle_dir)
    with (bundle_dir / "weights.safetensors").open("r+b") as handle:
        handle.seek(5000)
        handle.write(b"\x00" * 8)
    with pytest.raises(BundleError, match="SHA-256"):
        predict(SLOVENIA_SCENE, tmp_path / "out", PredictOptions(device="cpu"), bundle=bundle_dir, progress=False,
                product_level="L1C")
    assert not (tmp_path / "out").exists()
