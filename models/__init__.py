"""Model bundles (smp networks built from names, with a card) and the runtime shared by training and inference."""

from geovigie.classes import ClassInfo
from geovigie.models._bundle import (
    DEFAULT_BUNDLE,
    NETWORK_BUNDLE,
    ModelBundle,
    check_not_retired,
    check_weights,
    load_bundle,
    save_bundle,
    write_card,
)
from geovigie.models._calibration import calibrate, expected_calibration_error, fit_temperature, softmax
from geovigie.models._card import (
    CARD_FORMAT_VERSION,
    Architecture,
    Calibration,
    ModelCard,
    Normalisation,
    NormalisedDifference,
    OnnxExport,
    PixelFeatures,
)
from geovigie.models._mlm import mlm_item
from geovigie.models._network import build_network
from geovigie.models._onnx import export_onnx
from geovigie.models._pixel import (
    PROBABILITY_FLOOR,
    feature_count,
    feature_model,
    pixel_features,
    save_pixel_bundle,
    wrap_pixel_model,
)
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
from geovigie.models._scene import (
    MAX_STAT_PIXELS,
    BandMaps,
    SceneNormalisation,
    apply_band_maps,
    band_maps,
    normalise_scene,
    reference_of,
    stat_pixels,
)
from geovigie.retired_bundles import RETIRED_BUNDLES

__all__ = [
    "MAX_STAT_PIXELS",
    "PROBABILITY_FLOOR",
    "CARD_FORMAT_VERSION",
    "DEFAULT_BUNDLE",
    "NETWORK_BUNDLE",
    "RETIRED_BUNDLES",
    "RUNTIMES",
    "Architecture",
    "BandMaps",
    "Calibration",
    "ClassInfo",
    "ModelBundle",
    "ModelCard",
    "NormalisedDifference",
    "Normalisation",
    "OnnxExport",
    "OnnxPredictor",
    "PixelFeatures",
    "Predictor",
    "Runtime",
    "SceneNormalisation",
    "TorchPredictor",
    "apply_band_maps",
    "autocast",
    "band_maps",
    "build_network",
    "calibrate",
    "check_runtime",
    "check_not_retired",
    "check_weights",
    "expected_calibration_error",
    "export_onnx",
    "feature_count",
    "feature_model",
    "fill_values",
    "fit_temperature",
    "forward",
    "inference_context",
    "load_bundle",
    "load_predictor",
    "mlm_item",
    "normalise",
    "normalise_scene",
    "pixel_features",
    "reference_of",
    "resolve_device",
    "resolve_runtime",
    "save_bundle",
    "save_pixel_bundle",
    "softmax",
    "stat_pixels",
    "wrap_pixel_model",
    "write_card",
]
