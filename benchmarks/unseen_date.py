"""Shipped land-cover bundles and the candidates of the v3 config on the one Slovenia date none of them saw.

Scene 0 of the eo-learn patch (cloudier than scenes 1-3, never used for training), every labelled pixel (the RABA
land-use labels, mapped on the classes of the bundles). Bundles run through `load_predictor(runtime="onnx")` with
their own cards; the pixel candidates of `training/configs/landcover-s2l1c-slovenia.toml` are refitted as the final
model of that config is (all three dates, training blocks) and scored the same way.

    python benchmarks/unseen_date.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio

from geovigie.models import load_bundle, load_predictor, normalise
from geovigie.training import confusion_matrix, load_config, load_scenes, scores, spatial_split
from geovigie.training._pixels import PixelCandidate

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "s2-l1c-slovenia"
CONFIG = REPO / "training" / "configs" / "landcover-s2l1c-slovenia.toml"
BUNDLES = ["landcover-s2l1c-slovenia-v1", "landcover-s2l1c-slovenia-v2", "landcover-s2l1c-slovenia-v3"]


def main() -> None:
    config = load_config(CONFIG)
    names = config.class_names
    with rasterio.open(DATA / "reference_scene_0.tif") as src:
        image = src.read().astype(np.float32)
    with rasterio.open(DATA / "lulc_mask.tif") as src:
        raw = src.read(1)
    labels = np.full(raw.shape, 255, np.uint8)
    for value, spec in enumerate(config.classes):
        for source in spec.sources:
            labels[raw == int(source)] = value

    def row(name: str, pred: np.ndarray) -> None:
        result = scores(confusion_matrix(labels, pred, len(names)), names)
        print(json.dumps({"model": name, "overall_accuracy": round(result["overall_accuracy"], 3),
                          "miou": round(result["miou"], 3), "pixels": result["pixels"]}), flush=True)

    for folder in BUNDLES:
        bundle = load_bundle(REPO / "models" / "bundles" / folder)
        logits = load_predictor(bundle, "cpu", runtime="onnx")(normalise(bundle.card, image[None].copy()))[0]
        row(f"{bundle.id} ({bundle.card.kind})", logits.argmax(0))
    scenes, bands = load_scenes(config)
    sp = config.split
    split = spatial_split(scenes, block_px=sp.block_px, buffer_px=sp.buffer_px, val_fraction=sp.val_fraction,
                          test_fraction=sp.test_fraction, seed=sp.seed)
    train = [split[s.name].train for s in scenes]
    counts = np.bincount(np.concatenate([s.labels[m] for s, m in zip(scenes, train, strict=True)]), minlength=256)
    row("majority_class", np.full(labels.shape, int(np.argmax(counts[: len(names)])), np.uint8))
    for spec in config.candidates:
        if spec.kind != "network":
            candidate = PixelCandidate(spec, bands, len(names), config.train.seed)
            candidate.fit([s.image for s in scenes], [s.labels for s in scenes], train)
            row(f"candidate {spec.name}", candidate.probabilities(image).argmax(0))


if __name__ == "__main__":
    main()
