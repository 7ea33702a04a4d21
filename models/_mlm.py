"""A bundle's card as a STAC item with the Machine Learning Model (MLM) extension, so STAC tools can find our models.

Fields follow the MLM extension at the version pystac implements (`pystac.extensions.mlm`, v1.4.0); the item is
written as `item.json` beside `card.json` by `save_bundle` and `export_onnx`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pystac
import torch
from pystac.extensions.eo import EOExtension
from pystac.extensions.file import FileExtension
from pystac.extensions.mlm import MLMExtension, TaskType

from geovigie.bands import S2_BANDS, eo_band
from geovigie.models._network import build_network

if TYPE_CHECKING:
    from geovigie.models._bundle import ModelBundle

SAFETENSORS_TYPE = "application/octet-stream; application=safetensors"
ONNX_TYPE = "application/octet-stream; framework=onnx; profile=onnx"
_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_.-]+[a-zA-Z0-9]$")
_HYPERPARAMETER = re.compile(r"^[0-9a-zA-Z_.-]+$")


def _checksum(sha256: str) -> str:
    """A SHA-256 hex digest as the multihash the file extension wants (0x12 = sha2-256, 0x20 = 32 bytes)."""
    return f"1220{sha256}"


def _datetime(provenance: dict[str, Any]) -> datetime:
    trained = provenance.get("trained_at")
    if isinstance(trained, str):
        try:
            parsed = datetime.fromisoformat(trained)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


def _footprint(provenance: dict[str, Any]) -> tuple[dict[str, Any] | None, list[float] | None]:
    """The training area from `provenance["bbox"]` ([west, south, east, north] in WGS84) when the card has one."""
    bbox = provenance.get("bbox")
    if not (isinstance(bbox, list | tuple) and len(bbox) == 4 and all(isinstance(v, int | float) for v in bbox)):
        return None, None
    west, south, east, north = (float(v) for v in bbox)
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}, [west, south, east, north]


def total_parameters(bundle: ModelBundle) -> int:
    """Trainable and frozen parameters of the network the card describes (buffers such as BN statistics excluded)."""
    card = bundle.card
    if card.architecture is None:  # a pixel classifier: its ONNX model holds all its numbers
        from geovigie.models._pixel import onnx_parameters

        return onnx_parameters(bundle.weights_path)
    network = build_network(card.architecture, card.channels, card.num_classes)
    return sum(p.numel() for p in network.parameters())


def _inputs(bundle: ModelBundle) -> list[dict[str, Any]]:
    card = bundle.card
    norm = card.normalisation
    # (x * scale - mean) / std == (x - mean / scale) / (std / scale): one z-score per band on the raw values
    scaling = [{"type": "z-score", "mean": m / norm.scale, "stddev": s / norm.scale}
               for m, s in zip(norm.mean, norm.std, strict=True)]
    ranges = card.band_ranges()
    expected = f"; expected raw values {ranges[0] if len(set(ranges)) == 1 else ranges}" if ranges else ""
    scene = card.scene_normalisation
    pre = None
    if scene is not None:  # whole-raster statistics: no per-value scaling can say it
        expected += f"; before the value scaling, {scene.describe()} (the card's scene_normalisation)"
        pre = {"format": "python", "expression": "geovigie.models.normalise_scene(image, card.scene_normalisation)"}
    return [{
        "name": "bands",
        "bands": [*card.bands, *(f"{b}_previous" for b in card.bands if card.dates == 2)],
        "input": {"shape": [-1, card.channels, -1, -1], "dim_order": ["batch", "bands", "height", "width"],
                  "data_type": "float32"},
        "description": f"{card.product_level} {card.input_units or 'band values'} at {card.pixel_size_m:g} m"
                       + (f" of {card.describe_dates()}" if card.dates > 1 else "")
                       + f"{expected}; height and width are padded with the band means to a multiple of 32",
        "value_scaling": scaling,
        "resize_type": "pad",
        "pre_processing_function": pre,
    }]


def _outputs(bundle: ModelBundle, task: str) -> list[dict[str, Any]]:
    card = bundle.card
    post = None
    description = "class logits; class map = argmax over classes"
    if card.calibration is not None:
        post = {"format": "python", "expression": f"scipy.special.softmax(logits / {card.temperature!r}, axis=1)"}
        description += f"; calibrated probabilities = softmax(logits / {card.temperature:.4g}) (temperature scaling)"
    classes = [{"value": c.value, "name": c.name, "description": c.description or c.name,
                "color_hint": c.color.lstrip("#").upper()} for c in card.classes]
    return [{
        "name": "logits",
        "tasks": [task],
        "result": {"shape": [-1, card.num_classes, -1, -1], "dim_order": ["batch", "channel", "height", "width"],
                   "data_type": "float32"},
        "description": description,
        "classification:classes": classes,
        "post_processing_function": post,
    }]


def _eo_band(name: str) -> dict[str, object]:
    """A Sentinel-2 band with its common name and centre wavelength; any other band by its name."""
    return eo_band(name) if name in S2_BANDS else {"name": name}


def _architecture(card: Any) -> str:
    if card.architecture is not None:
        return f"{card.architecture.name} ({card.architecture.encoder} encoder)"
    pixel = card.pixel
    features = f"{len(card.bands)} bands" + (f" + {', '.join(i.name for i in pixel.indices)}" if pixel.indices else "")
    near = f", with their {pixel.neighbourhood}x{pixel.neighbourhood} mean" if pixel.neighbourhood else ""
    return f"per-pixel {pixel.estimator or 'classifier'} on {features}{near} (ONNX)"


def mlm_item(bundle: ModelBundle) -> pystac.Item:
    """The bundle's card as a STAC item with the MLM extension: properties `mlm:*`, assets `weights`, `onnx`, `card`.

    Asset hrefs are relative to the bundle folder (`./weights.safetensors`...), so the item stays valid when the
    folder moves. The training area comes from `card.provenance["bbox"]` when present (else a null geometry) and
    the datetime from `card.provenance["trained_at"]` (else now).
    """
    card = bundle.card
    geometry, bbox = _footprint(card.provenance)
    name = card.name if _NAME.match(card.name) else re.sub(r"[^a-zA-Z0-9_.-]", "-", f"m{card.name}x")
    tasks = {t.value for t in TaskType}
    task = card.task if card.task in tasks else TaskType.SEGMENTATION.value
    software = card.provenance.get("software", {})
    framework_version = software.get("torch") if isinstance(software, dict) else None
    training = card.provenance.get("training")
    hyper = ({k: v for k, v in training.items() if _HYPERPARAMETER.match(k)} if isinstance(training, dict) else {})
    properties: dict[str, Any] = {
        "title": f"{card.name} v{card.version}",
        "description": card.limitations or f"{card.task} model {card.name} v{card.version}",
        "mlm:name": name,
        "mlm:architecture": _architecture(card),
        "mlm:tasks": [task],
        "mlm:framework": "PyTorch" if card.kind == "network" else "scikit-learn",
        "mlm:framework_version": str((framework_version or torch.__version__) if card.kind == "network"
                                     else software.get("scikit-learn", "unknown")),
        "mlm:total_parameters": total_parameters(bundle),
        "mlm:pretrained": False,
        "mlm:pretrained_source": None,
        "mlm:accelerator": "amd64",
        "mlm:accelerator_constrained": False,
        "mlm:accelerator_summary": "runs on CPU (PyTorch or ONNX Runtime) or a CUDA GPU (float16 autocast)"
                                   if card.kind == "network" else "runs on CPU with ONNX Runtime",
        "mlm:input": _inputs(bundle),
        "mlm:output": _outputs(bundle, task),
        "geovigie:card_format": card.format_version,
        "geovigie:product_level": card.product_level,
    }
    if hyper:
        properties["mlm:hyperparameters"] = hyper
    if card.calibration is not None:
        properties["geovigie:calibration"] = card.calibration.model_dump(mode="json")
    item = pystac.Item(id=f"{card.name}-v{card.version}", geometry=geometry, bbox=bbox,
                       datetime=_datetime(card.provenance), properties=properties)
    item.stac_extensions = [MLMExtension.get_schema_uri(), FileExtension.get_schema_uri(), EOExtension.get_schema_uri()]
    # the named input bands described by `eo:bands` on every model asset, as the MLM schema requires
    bands = [_eo_band(band) for band in card.bands]
    bands += [{**b, "name": f"{b['name']}_previous"} for b in bands if card.dates == 2]  # the previous pass's
    weights: dict[str, Any] = {"mlm:artifact_type": "safetensors", "eo:bands": bands}
    if card.weights_sha256:
        weights["file:checksum"] = _checksum(card.weights_sha256)
    if card.kind == "network":
        item.add_asset("weights", pystac.Asset("./weights.safetensors", title="PyTorch weights (safetensors)",
                                               media_type=SAFETENSORS_TYPE, roles=["mlm:model", "mlm:weights", "data"],
                                               extra_fields=weights))
    if card.onnx is not None:
        roles = ["mlm:model", "data"] if card.kind == "network" else ["mlm:model", "mlm:weights", "data"]
        item.add_asset("onnx", pystac.Asset(f"./{card.onnx.file}", title=f"ONNX model (opset {card.onnx.opset})",
                                            media_type=ONNX_TYPE, roles=roles,
                                            extra_fields={"mlm:artifact_type": "onnx", "eo:bands": bands,
                                                          "file:checksum": _checksum(card.onnx.sha256)}))
    item.add_asset("card", pystac.Asset("./card.json", title="geovigie model card", media_type=pystac.MediaType.JSON,
                                        roles=["metadata"]))
    return item
