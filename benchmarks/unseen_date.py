"""Every scene of the Slovenia patch held out in turn, scene 0 (never used for training) included: the pixel
candidates of the land-cover config beside the plain random forest, and the shipped bundles on scene 0.

For each held-out scene h (0, 1, 2, 3), every pixel candidate of `training/configs/landcover-s2l1c-slovenia.toml`
is fitted on the training blocks of the config's other dates (1-3 minus h: the config's spatial split) and scored
on the held-out date: its test blocks (neither the date nor the place seen) and every labelled pixel of it. The
shipped bundles are scored on scene 0 as `predict` runs them: scene normalisation from the whole raster (when the
card has one), the card's normalisation, ONNX Runtime.

    python benchmarks/unseen_date.py [--candidates NAME ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import rasterio

from geovigie.models import DEFAULT_BUNDLE, NETWORK_BUNDLE, load_bundle, load_predictor, normalise, normalise_scene
from geovigie.training import IGNORE, confusion_matrix, load_config, load_scenes, scores, spatial_split
from geovigie.training._pixels import PixelCandidate

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "s2-l1c-slovenia"
CONFIG = REPO / "training" / "configs" / "landcover-s2l1c-slovenia.toml"
BUNDLES = [DEFAULT_BUNDLE, NETWORK_BUNDLE]  # the shipped land-cover bundles (the retired v2 / v3: BENCHMARKS.md)


def _labels(config) -> np.ndarray:  # noqa: ANN001
    with rasterio.open(DATA / "lulc_mask.tif") as src:
        raw = src.read(1)
    labels = np.full(raw.shape, IGNORE, np.uint8)
    for value, spec in enumerate(config.classes):
        for source in spec.sources:
            labels[raw == int(source)] = value
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", nargs="*", help="candidate names (default: every pixel candidate)")
    args = parser.parse_args()
    config = load_config(CONFIG)
    names = config.class_names
    labels = _labels(config)
    scenes, bands = load_scenes(config)
    sp = config.split
    split = spatial_split(scenes, block_px=sp.block_px, buffer_px=sp.buffer_px, val_fraction=sp.val_fraction,
                          test_fraction=sp.test_fraction, seed=sp.seed)
    test_blocks = split[scenes[0].name].test  # map-aligned blocks: the same on every scene of the patch
    images = {}
    for k in range(4):
        with rasterio.open(DATA / f"reference_scene_{k}.tif") as src:
            images[f"scene-{k}"] = src.read().astype(np.float32)

    def row(model: str, held: str, pred: np.ndarray) -> None:
        out = {"model": model, "held_out": held}
        for where, mask in (("test_blocks", test_blocks), ("whole_date", np.ones_like(test_blocks))):
            result = scores(confusion_matrix(np.where(mask, labels, IGNORE), pred, len(names)), names)
            out[where] = [round(result["overall_accuracy"], 3), round(result["miou"], 3), result["pixels"]]
        print(json.dumps(out), flush=True)

    for path in BUNDLES:
        bundle = load_bundle(path)
        image = normalise_scene(images["scene-0"], bundle.card.scene_normalisation)
        logits = load_predictor(bundle, "cpu", runtime="onnx")(normalise(bundle.card, image[None].copy()))[0]
        row(f"{bundle.id} ({bundle.card.kind})", "scene-0", logits.argmax(0))
    specs = [c for c in config.candidates if c.kind != "network" and (not args.candidates or c.name in args.candidates)]
    for held in images:
        train = [s for s in scenes if s.date != held]
        masks = [split[s.name].train for s in train]
        counts = np.bincount(np.concatenate([s.labels[m] for s, m in zip(train, masks, strict=True)]), minlength=256)
        row("majority_class", held, np.full(labels.shape, int(np.argmax(counts[: len(names)])), np.uint8))
        for spec in specs:
            candidate = PixelCandidate(spec, bands, len(names), config.train.seed)
            candidate.fit([s.image for s in train], [s.labels for s in train], masks)
            row(spec.name, held, candidate.probabilities(images[held]).argmax(0))


if __name__ == "__main__":
    main()
