"""Every scene of the Slovenia patch held out in turn, scene 0 (never used for training) included: the pixel
candidates of the land-cover config beside the plain random forest, and the shipped bundles on scene 0.

For each held-out scene h (0, 1, 2, 3), every pixel candidate of `training/configs/landcover-s2l1c-slovenia.toml`
is fitted on the training blocks of the config's other dates (1-3 minus h: the config's spatial split) and scored
on the held-out date: its test blocks (neither the date nor the place seen) and every labelled pixel of it. The
shipped bundles are scored on scene 0 as `predict` runs them: scene normalisation from the whole raster (when the
card has one), the card's normalisation, ONNX Runtime.

Multi-date candidates (`dates = 2`) see each date stacked with the previous pass of the patch among all four scenes
(acquisitions.json: scene 1 07-31, scene 0 08-20, scene 3 08-30, scene 2 09-09); a training stack holding the held-out
date is dropped, and the first pass (scene 1) has no previous one, so it is not predicted. `--abstain` adds each
candidate with a cloud / haze test (HOT = B02 - 0.5 B04 - 0.08 > 0, Zhu & Woodcock 2012) that abstains there:
coverage (share of labelled pixels classified) and OA / mIoU on the classified ones.

    python benchmarks/unseen_date.py [--config TOML] [--candidates NAME ...] [--abstain]
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


def _acquired() -> dict[str, str]:
    dates = json.loads((DATA / "acquisitions.json").read_text())
    return {f"scene-{k}": dates[f"reference_scene_{k}"]["datetime"] for k in range(4)}


def haze_mask(image: np.ndarray) -> np.ndarray:
    """Pixels the haze-optimised transform flags as cloud or thick haze: B02 - 0.5 B04 - 0.08 > 0 (TOA)."""
    return image[1] - 0.5 * image[3] - 0.08 > 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG, help="experiment config (default: the shipped one)")
    parser.add_argument("--candidates", nargs="*", help="candidate names (default: every pixel candidate)")
    parser.add_argument("--abstain", action="store_true", help="also score each candidate abstaining on HOT > 0")
    parser.add_argument("--bundles", nargs="*", default=BUNDLES, help="bundle folders run on scene 0 (default: the "
                        "shipped land-cover bundles)")
    args = parser.parse_args()
    config = load_config(args.config)
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

    def row(model: str, held: str, pred: np.ndarray, abstain: np.ndarray | None = None) -> None:
        out: dict[str, object] = {"model": model, "held_out": held}
        for where, mask in (("test_blocks", test_blocks), ("whole_date", np.ones_like(test_blocks))):
            labelled = mask & (labels != IGNORE)
            kept = labelled if abstain is None else labelled & ~abstain
            result = scores(confusion_matrix(np.where(kept, labels, IGNORE), pred, len(names)), names)
            oa, miou = result["overall_accuracy"], result["miou"]
            out[where] = [None if oa is None else round(oa, 3), None if miou is None else round(miou, 3),
                          result["pixels"]]
            if abstain is not None:
                out[where].append(round(int(kept.sum()) / max(1, int(labelled.sum())), 3))  # coverage
        print(json.dumps(out), flush=True)

    for path in map(Path, args.bundles):
        if not path.is_dir():
            continue
        bundle = load_bundle(path)
        image = normalise_scene(images["scene-0"], bundle.card.scene_normalisation)
        logits = load_predictor(bundle, "cpu", runtime="onnx")(normalise(bundle.card, image[None].copy()))[0]
        row(f"{bundle.id} ({bundle.card.kind})", "scene-0", logits.argmax(0))
    specs = [c for c in config.candidates if c.kind != "network" and (not args.candidates or c.name in args.candidates)]
    acquired = _acquired()
    passes = sorted(images, key=lambda k: acquired[k])  # the patch's chronology, scene 0 included
    previous = {k: (passes[passes.index(k) - 1] if passes.index(k) else None) for k in passes}
    for held in images:
        train = [s for s in scenes if s.date != held]
        masks = [split[s.name].train for s in train]
        counts = np.bincount(np.concatenate([s.labels[m] for s, m in zip(train, masks, strict=True)]), minlength=256)
        majority = np.full(labels.shape, int(np.argmax(counts[: len(names)])), np.uint8)
        row("majority_class", held, majority)
        if args.abstain:  # the same pixels, always the majority class: is what is left merely easier?
            row("majority_class+abstain_hot", held, majority, haze_mask(images[held]))
        for spec in specs:
            candidate = PixelCandidate(spec, bands, len(names), config.train.seed)
            if spec.dates == 1:
                stacks = [(s.image, s.labels, m) for s, m in zip(train, masks, strict=True)]
                target: np.ndarray | None = images[held]
            else:  # stacks (date, previous pass) of the training dates, none holding the held-out date
                stacks = [(np.concatenate([s.image, images[previous[s.date]]]), s.labels, m)
                          for s, m in zip(train, masks, strict=True) if previous[s.date] not in (None, held)]
                before = previous[held]
                target = None if before is None else np.concatenate([images[held], images[before]])
                print(json.dumps({"model": spec.name, "held_out": held, "training_stacks": [
                    f"{s.date}+{previous[s.date]}" for s in train if previous[s.date] not in (None, held)],
                    "predicted": target is not None}), flush=True)
            if not stacks or target is None:
                continue
            candidate.fit(*(list(column) for column in zip(*stacks, strict=True)))
            pred = candidate.probabilities(target).argmax(0)
            row(spec.name, held, pred)
            if args.abstain:
                row(f"{spec.name}+abstain_hot", held, pred, haze_mask(images[held]))


if __name__ == "__main__":
    main()
