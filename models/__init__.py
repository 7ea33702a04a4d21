"""Model bundles (smp networks built from names, with a card) and the runtime shared by training and inference."""

from geovigie.classes import ClassInfo
from geovigie.models._bundle import (
    DEFAULT_BUNDLE,
    ModelBundle,
    check_weights,
    load_bundle,
    save_bundle,
    sha256_of,
    write_card,
)
from geovigie.models._calibration import calibrate, expected_calibration_error, fit_temperature, softmax
from geovigie.models._card import CARD_FORMAT_VERSION, Architecture, Calibration, ModelCard, Normalisation, OnnxExport
from geovigie.models._mlm import mlm_item
from geovigie.models._network import build_network
from geovigie.models._onnx import export_onnx
from geovigie.models._predictor import (
    RUNTIMES,
    OnnxPredictor,
    Predictor,
    Runtime,
    TorchPredictor,
    check_runtime,
    load_predictor,
    resolve_runtime,
)
from geovigie.models._runtime import autocast, fill_values, forward, inference_context, normalise, resolve_device

__all__ = [
    "CARD_FORMAT_VERSION",
    "DEFAULT_BUNDLE",
    "RUNTIMES",
    "Architecture",
    "Calibration",
    "ClassInfo",
    "ModelBundle",
    "ModelCard",
    "Normalisation",
    "OnnxExport",
    "OnnxPredictor",
    "Predictor",
    "Runtime",
    "TorchPredictor",
    "autocast",
    "build_network",
    "calibrate",
    "check_runtime",
    "check_weights",
    "expected_calibration_error",
    "export_onnx",
    "fill_values",
    "fit_temperature",
    "forward",
    "inference_context",
    "load_bundle",
    "load_predictor",
    "mlm_item",
    "normalise",
    "resolve_device",
    "resolve_runtime",
    "save_bundle",
    "sha256_of",
    "softmax",
    "write_card",
]
