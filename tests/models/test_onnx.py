"""ONNX export and the predictors: ONNX Runtime and PyTorch agree on the real Slovenia scenes."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from geovigie.errors import BundleError, DeviceUnavailableError, InvalidInputError
from geovigie.models import (
    Calibration,
    OnnxPredictor,
    TorchPredictor,
    check_runtime,
    load_bundle,
    load_predictor,
    normalise,
    save_bundle,
    write_card,
)
from tests.models.conftest import Slovenia


def _batch(bundle_path: Path, slovenia: Slovenia) -> np.ndarray:
    return normalise(load_bundle(bundle_path).card, slovenia.images.copy())


def test_export_records_the_file_in_card_and_item(onnx_bundle: Path) -> None:
    bundle = load_bundle(onnx_bundle)
    assert bundle.card.format_version == "2"
    assert bundle.card.onnx is not None and bundle.card.onnx.opset == 17
    onnx_file = onnx_bundle / bundle.card.onnx.file
    assert hashlib.sha256(onnx_file.read_bytes()).hexdigest() == bundle.card.onnx.sha256
    assert bundle.card.onnx.weights_sha256 == bundle.card.weights_sha256
    assert not list(onnx_bundle.glob(".*gvtmp*")), "no temporary file left"
    item = json.loads((onnx_bundle / "item.json").read_text())
    assert item["assets"]["onnx"]["href"] == "./model.onnx"
    assert item["assets"]["onnx"]["file:checksum"] == "1220" + bundle.card.onnx.sha256


def test_onnx_runtime_matches_pytorch_on_real_scenes(onnx_bundle: Path, slovenia: Slovenia) -> None:
    batch = _batch(onnx_bundle, slovenia)  # 3 scenes of 101 x 100 px: not multiples of 32, padded by both
    torch_logits = load_predictor(onnx_bundle, "cpu", "torch")(batch)
    onnx_logits = load_predictor(onnx_bundle, "cpu", "onnx")(batch)
    assert onnx_logits.shape == torch_logits.shape == (3, 5, 101, 100)
    assert onnx_logits.dtype == np.float32
    assert np.abs(onnx_logits - torch_logits).max() < 1e-3
    agree = (onnx_logits.argmax(axis=1) == torch_logits.argmax(axis=1)).mean()
    assert agree > 0.999
    # dynamic axes: another batch size and tile size than the export's example (1 x 64 x 64)
    crop = np.ascontiguousarray(batch[:2, :, :96, :64])
    onnx_crop = load_predictor(onnx_bundle, "cpu", "onnx")(crop)
    assert onnx_crop.shape == (2, 5, 96, 64)
    assert np.abs(onnx_crop - load_predictor(onnx_bundle, "cpu", "torch")(crop)).max() < 1e-3


def test_temperature_divides_logits_in_both_runtimes(onnx_bundle: Path, tmp_path: Path, slovenia: Slovenia) -> None:
    calibrated = tmp_path / "calibrated"
    shutil.copytree(onnx_bundle, calibrated)
    bundle = load_bundle(calibrated)
    write_card(calibrated, bundle.card.model_copy(update={"calibration": Calibration(temperature=2.0)}))
    batch = _batch(calibrated, slovenia)[:1]
    raw = load_predictor(calibrated, "cpu", "torch", calibrated=False)(batch)
    for runtime in ("torch", "onnx"):
        predictor = load_predictor(calibrated, "cpu", runtime)
        assert predictor.temperature == 2.0
        np.testing.assert_allclose(predictor(batch), raw / 2.0, atol=1e-3)
        probs = predictor.probabilities(batch)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
        assert np.array_equal(probs.argmax(axis=1), raw.argmax(axis=1))


def test_predictor_types_and_bad_input(onnx_bundle: Path) -> None:
    assert isinstance(load_predictor(onnx_bundle, "cpu", "onnx"), OnnxPredictor)
    torch_predictor = load_predictor(None, "cpu")
    assert isinstance(torch_predictor, TorchPredictor)
    with pytest.raises(InvalidInputError, match="unknown runtime 'tensorrt'"):
        load_predictor(onnx_bundle, "cpu", "tensorrt")
    with pytest.raises(InvalidInputError, match=r"\(B, 13, H, W\)"):
        torch_predictor(np.zeros((1, 12, 32, 32), dtype=np.float32))


def test_onnx_runtime_refuses_missing_corrupt_or_stale_exports(onnx_bundle: Path, plain_bundle: Path,
                                                              tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no ONNX export.*geovigie model export-onnx"):
        load_predictor(plain_bundle, "cpu", "onnx")
    corrupt = tmp_path / "corrupt"
    shutil.copytree(onnx_bundle, corrupt)
    with (corrupt / "model.onnx").open("r+b") as f:
        f.seek(2000)
        f.write(b"\x00" * 16)
    with pytest.raises(BundleError, match="SHA-256.*export it again"):
        load_predictor(corrupt, "cpu", "onnx")
    stale = tmp_path / "stale"
    shutil.copytree(onnx_bundle, stale)
    card = load_bundle(stale).card
    assert card.onnx is not None
    write_card(stale, card.model_copy(update={"onnx": card.onnx.model_copy(update={"weights_sha256": "0" * 64})}))
    with pytest.raises(BundleError, match="other weights"):
        load_predictor(stale, "cpu", "onnx")


def test_saving_new_weights_drops_the_old_export(onnx_bundle: Path, tmp_path: Path) -> None:
    folder = tmp_path / "resaved"
    shutil.copytree(onnx_bundle, folder)
    bundle = load_bundle(folder)
    save_bundle(folder, bundle.load_network(), bundle.card)
    assert not (folder / "model.onnx").exists()
    assert load_bundle(folder).card.onnx is None


def test_check_runtime_fails_early_without_loading(onnx_bundle: Path, plain_bundle: Path) -> None:
    check_runtime(load_bundle(onnx_bundle), "onnx", "cpu")
    check_runtime(load_bundle(), "torch", "cpu")
    with pytest.raises(BundleError, match="no ONNX export"):
        check_runtime(load_bundle(plain_bundle), "onnx", "cpu")
    with pytest.raises(InvalidInputError, match="unknown runtime"):
        check_runtime(load_bundle(), "tflite")
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(DeviceUnavailableError, match="onnxruntime-gpu"):
            check_runtime(load_bundle(onnx_bundle), "onnx", "cuda")


def test_one_predictor_for_every_runtime_option(onnx_bundle: Path, plain_bundle: Path, slovenia: Slovenia) -> None:
    """`auto`, channels-last and the weight check all live in the one predictor that inference workers load."""
    assert isinstance(load_predictor(onnx_bundle, "cpu", "auto"), OnnxPredictor)
    assert isinstance(load_predictor(plain_bundle, "cpu", "auto"), TorchPredictor)
    batch = _batch(plain_bundle, slovenia)[:1]  # 101 x 100: padded to 128 x 128 and cropped back
    plain = load_predictor(plain_bundle, "cpu", "torch")(batch)
    last = load_predictor(plain_bundle, "cpu", "torch", channels_last=True)(batch)
    assert last.shape == plain.shape == (1, 5, 101, 100) and last.flags.c_contiguous
    np.testing.assert_allclose(last, plain, atol=1e-4)
    np.testing.assert_array_equal(load_predictor(plain_bundle, "cpu", "torch", verified=True)(batch), plain)


def test_the_weight_check_is_skipped_only_when_the_run_verified_it(plain_bundle: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt"
    shutil.copytree(plain_bundle, corrupt)
    with (corrupt / "weights.safetensors").open("r+b") as handle:  # a flipped weight: still a loadable file
        handle.seek(-16, 2)
        byte = handle.read(1)
        handle.seek(-16, 2)
        handle.write(bytes([byte[0] ^ 0x01]))
    with pytest.raises(BundleError, match="SHA-256"):
        load_predictor(corrupt, "cpu", "torch")
    load_predictor(corrupt, "cpu", "torch", verified=True)  # the caller says it checked: no second hash
