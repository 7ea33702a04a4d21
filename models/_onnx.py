"""ONNX export of a bundle's network, written into the bundle and recorded (with its SHA-256) in the card."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from geovigie.atomic import atomic_path
from geovigie.digests import sha256_of
from geovigie.errors import BundleError
from geovigie.models._bundle import ModelBundle, load_bundle, write_card
from geovigie.models._card import OnnxExport

ONNX_FILE = "model.onnx"
DEFAULT_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "logits"
_EXAMPLE_SIZE = 64
"""Height and width of the example batch traced at export; the exported axes stay dynamic."""


def export_onnx(bundle_dir: str | Path | ModelBundle, opset: int = DEFAULT_OPSET) -> Path:
    """Export the bundle's network to `model.onnx` in the bundle (atomically) and record it in card and item.

    Batch, height and width are dynamic axes (height and width must still be multiples of 32, as for PyTorch:
    the predictors pad). The file is checked with `onnx.checker` before it replaces any earlier export.

    Returns:
        The path of the ONNX file.

    Raises:
        BundleError: the network cannot be exported or the export is not a valid ONNX model.
    """
    import onnx

    bundle = bundle_dir if isinstance(bundle_dir, ModelBundle) else load_bundle(bundle_dir)
    if bundle.card.kind != "network":
        raise BundleError(f"{bundle.path}: bundle {bundle.id} is a {bundle.card.kind}: its {bundle.weights_path.name} "
                          "is already its ONNX model, there is no network to export")
    network = bundle.load_network("cpu")
    example = torch.zeros(1, bundle.card.channels, _EXAMPLE_SIZE, _EXAMPLE_SIZE)
    target = bundle.path / ONNX_FILE
    axes = {0: "batch", 2: "height", 3: "width"}
    with atomic_path(target) as tmp:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notices
                torch.onnx.export(network, (example,), str(tmp), opset_version=opset, input_names=[INPUT_NAME],
                                  output_names=[OUTPUT_NAME], dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes},
                                  do_constant_folding=True, dynamo=False)
            onnx.checker.check_model(str(tmp))
        except Exception as err:  # torch.onnx and onnx raise many kinds; all mean the same here
            raise BundleError(f"{bundle.path}: cannot export {bundle.id} to ONNX opset {opset} ({err})") from err
        digest = sha256_of(tmp)
    record = OnnxExport(file=ONNX_FILE, opset=opset, sha256=digest, weights_sha256=bundle.card.weights_sha256)
    write_card(bundle.path, bundle.card.model_copy(update={"onnx": record}))
    return target
