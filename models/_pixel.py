"""Per-pixel classifiers as bundles: one ONNX graph from the networks' input to the networks' output.

A pixel-classifier bundle (card `kind = "pixel-classifier"`) holds `model.onnx` and no other weights. The graph takes
the same normalised float32 batch (N, bands, H, W) as a network, undoes the card's normalisation (the classifier was
fitted on raw values), computes the card's features at every pixel (bands, normalised differences, optionally their
3 x 3 mean), runs the per-pixel model (e.g. a scikit-learn forest converted by
skl2onnx) on the (N * H * W, features) table, and returns log-probabilities (N, classes, H, W): softmax of them gives
the model's probabilities back, argmax its classes, so the tiled pipeline, calibration and runtimes treat it as a
network. The feature part alone (`feature_model`) is what training computes its features with, so training and
inference see the same numbers.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from geovigie.atomic import atomic_path
from geovigie.errors import BundleError
from geovigie.models._bundle import ModelBundle, write_card
from geovigie.models._card import ModelCard, Normalisation, OnnxExport, PixelFeatures

INPUT_NAME, OUTPUT_NAME, FEATURES_NAME = "input", "logits", "features"
PIXEL_ONNX = "model.onnx"
PROBABILITY_FLOOR = 1e-7
"""Probabilities are floored before the log (a forest gives many zeros): softmax(log p) differs from p by at most
classes * 1e-7."""
INDEX_EPSILON = 1e-6
"""Added to the denominator of normalised differences (dark pixels)."""
OPSET = 17


def feature_count(bands: int, spec: PixelFeatures) -> int:
    """Features per pixel: input channels kept (`spec.channels`, default all `bands`) + indices, twice with the
    neighbourhood mean."""
    base = (bands if spec.channels is None else len(spec.channels)) + len(spec.indices)
    return base * (2 if spec.neighbourhood else 1)


def _feature_nodes(spec: PixelFeatures, source: str, target: str) -> tuple[list[Any], list[Any]]:
    """ONNX nodes and initialisers computing the features (N, F, H, W) `target` from the batch `source`."""
    from onnx import TensorProto, helper

    nodes, inits = [], []
    parts = [source] if spec.channels is None else []
    if spec.channels:
        inits.append(helper.make_tensor("px_channels_at", TensorProto.INT64, [len(spec.channels)], spec.channels))
        nodes.append(helper.make_node("Gather", [source, "px_channels_at"], ["px_channels"], axis=1))
        parts.append("px_channels")
    if spec.indices:
        inits.append(helper.make_tensor("px_eps", TensorProto.FLOAT, [], [INDEX_EPSILON]))
    for k, index in enumerate(spec.indices):
        a, b = f"px_idx{k}_a", f"px_idx{k}_b"
        inits += [helper.make_tensor(f"{a}_at", TensorProto.INT64, [1], [index.a]),
                  helper.make_tensor(f"{b}_at", TensorProto.INT64, [1], [index.b])]
        nodes += [helper.make_node("Gather", [source, f"{a}_at"], [a], axis=1),
                  helper.make_node("Gather", [source, f"{b}_at"], [b], axis=1),
                  helper.make_node("Sub", [a, b], [f"px_idx{k}_num"]),
                  helper.make_node("Add", [a, b], [f"px_idx{k}_sum"]),
                  helper.make_node("Add", [f"px_idx{k}_sum", "px_eps"], [f"px_idx{k}_den"]),
                  helper.make_node("Div", [f"px_idx{k}_num", f"px_idx{k}_den"], [f"px_idx{k}"])]
        parts.append(f"px_idx{k}")
    base = target if not spec.neighbourhood else "px_base"
    nodes.append(helper.make_node("Concat", parts, [base], axis=1) if len(parts) > 1
                 else helper.make_node("Identity", parts, [base]))
    if spec.neighbourhood:
        r = spec.neighbourhood // 2
        nodes += [helper.make_node("AveragePool", [base], ["px_neighbour_mean"], kernel_shape=[spec.neighbourhood] * 2,
                                   pads=[r, r, r, r], strides=[1, 1], count_include_pad=0),
                  helper.make_node("Concat", [base, "px_neighbour_mean"], [target], axis=1)]
    return nodes, inits


def feature_model(bands: int, spec: PixelFeatures) -> Any:
    """An ONNX model: batch (N, bands, H, W) -> features (N, F, H, W)."""
    from onnx import TensorProto, helper

    nodes, inits = _feature_nodes(spec, INPUT_NAME, FEATURES_NAME)
    graph = helper.make_graph(
        nodes, "pixel-features", [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", bands, "H", "W"])],
        [helper.make_tensor_value_info(FEATURES_NAME, TensorProto.FLOAT, ["N", feature_count(bands, spec), "H", "W"])],
        inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def pixel_features(image: np.ndarray, spec: PixelFeatures) -> np.ndarray:
    """Features (F, H, W) of a raw image (bands, H, W), computed by the same ONNX graph the bundle runs."""
    from geovigie.models._predictor import _onnxruntime

    ort = _onnxruntime()
    model = feature_model(image.shape[0], spec)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {INPUT_NAME: np.ascontiguousarray(image[None], dtype=np.float32)})
    return out[0]


def _raw_nodes(norm: Normalisation, source: str, target: str) -> tuple[list[Any], list[Any]]:
    """Nodes undoing `normalise`: raw = (x * std + mean) / scale, per band."""
    from onnx import TensorProto, helper

    bands = len(norm.mean)
    std = np.asarray(norm.std, np.float32) / np.float32(norm.scale)
    mean = np.asarray(norm.mean, np.float32) / np.float32(norm.scale)
    inits = [helper.make_tensor("px_band_std", TensorProto.FLOAT, [bands, 1, 1], std.tolist()),
             helper.make_tensor("px_band_mean", TensorProto.FLOAT, [bands, 1, 1], mean.tolist())]
    nodes = [helper.make_node("Mul", [source, "px_band_std"], ["px_scaled"]),
             helper.make_node("Add", ["px_scaled", "px_band_mean"], [target])]
    return nodes, inits


def wrap_pixel_model(table_model: Any, bands: int, spec: PixelFeatures, classes: int,
                     columns: list[int] | None = None, norm: Normalisation | None = None) -> Any:
    """The bundle's ONNX model: features, then `table_model` (input (P, F) float32; its first float output of shape
    (P, len(columns)) holds probabilities, e.g. skl2onnx's `probabilities` with zipmap off), then log and reshape to
    (N, classes, H, W). `columns`: the class value of each probability column (default 0..classes-1); classes
    without a column get probability 0 (floored). `norm`: the card's normalisation, undone first (None: the input
    is raw)."""
    import onnx
    from onnx import TensorProto, helper

    graph = table_model.graph
    table_in = graph.input[0].name
    proba = next(o.name for o in graph.output if o.type.tensor_type.elem_type == TensorProto.FLOAT)
    features = feature_count(bands, spec)
    pre, inits = _feature_nodes(spec, "px_raw" if norm is not None else INPUT_NAME, "px_features")
    if norm is not None:
        raw_nodes, raw_inits = _raw_nodes(norm, INPUT_NAME, "px_raw")
        pre, inits = raw_nodes + pre, raw_inits + inits
    inits += [helper.make_tensor("px_table_shape", TensorProto.INT64, [2], [-1, features]),
              helper.make_tensor("px_floor", TensorProto.FLOAT, [], [PROBABILITY_FLOOR]),
              helper.make_tensor("px_classes", TensorProto.INT64, [1], [classes]),
              helper.make_tensor("px_nhw", TensorProto.INT64, [3], [0, 2, 3])]
    pre += [helper.make_node("Transpose", ["px_features"], ["px_nhwf"], perm=[0, 2, 3, 1]),
            helper.make_node("Reshape", ["px_nhwf", "px_table_shape"], [table_in])]
    post = []
    if columns is not None and list(columns) != list(range(classes)):
        scatter = np.zeros((len(columns), classes), dtype=np.float32)
        scatter[np.arange(len(columns)), columns] = 1.0
        inits.append(helper.make_tensor("px_scatter", TensorProto.FLOAT, list(scatter.shape), scatter.ravel()))
        post.append(helper.make_node("MatMul", [proba, "px_scatter"], ["px_all_classes"]))
        proba = "px_all_classes"
    post += [helper.make_node("Clip", [proba, "px_floor"], ["px_clipped"]),
            helper.make_node("Log", ["px_clipped"], ["px_log"]),
            helper.make_node("Shape", [INPUT_NAME], ["px_in_shape"]),
            helper.make_node("Gather", ["px_in_shape", "px_nhw"], ["px_dims"], axis=0),
            helper.make_node("Concat", ["px_dims", "px_classes"], ["px_out_shape"], axis=0),
            helper.make_node("Reshape", ["px_log", "px_out_shape"], ["px_nhwk"]),
            helper.make_node("Transpose", ["px_nhwk"], [OUTPUT_NAME], perm=[0, 3, 1, 2])]
    merged = helper.make_graph(
        pre + list(graph.node) + post, "pixel-classifier",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", bands, "H", "W"])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", classes, "H", "W"])],
        list(graph.initializer) + inits)
    opsets = {o.domain: o.version for o in table_model.opset_import}
    opsets[""] = max(opsets.get("", OPSET), OPSET)
    model = helper.make_model(merged, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
                              producer_name="geovigie")
    model.ir_version = table_model.ir_version
    onnx.checker.check_model(model)
    return model


def save_pixel_bundle(folder: str | Path, model: Any, card: ModelCard) -> ModelBundle:
    """Write `model.onnx` (atomically), then the card (kind pixel-classifier, `weights_sha256` = the ONNX file's
    hash) and its STAC MLM item.

    Raises:
        BundleError: the card is not a pixel-classifier card.
    """
    if card.kind != "pixel-classifier" or card.pixel is None:
        raise BundleError(f"{folder}: save_pixel_bundle needs a pixel-classifier card")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = model.SerializeToString()
    with atomic_path(folder / PIXEL_ONNX) as tmp:
        tmp.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    (folder / "weights.safetensors").unlink(missing_ok=True)  # a network bundle saved here before
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    record = OnnxExport(file=PIXEL_ONNX, opset=opset, sha256=digest, weights_sha256=digest)
    return write_card(folder, card.model_copy(update={"weights_sha256": digest, "onnx": record}))


def onnx_parameters(path: Path) -> int:
    """Stored numbers of an ONNX model: initialiser elements plus the float and int lists of node attributes
    (a tree ensemble keeps its nodes there)."""
    import onnx

    model = onnx.load(str(path))
    total = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    for node in model.graph.node:
        total += sum(len(a.floats) + len(a.ints) for a in node.attribute)
    return total
