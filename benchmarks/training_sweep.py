"""Diagnostic sweep of an experiment config: variants trained on the same split, scored after every epoch.

For each variant (a JSON object of config sections to override, plus "norm": "global" | "robust" | "per-scene"),
trains with the real loop (`fit`, seeded) and prints, after each epoch and for the kept epoch, the network's overall
accuracy / mIoU on the training pixels, validation blocks, test blocks, the held-out date's test blocks (`ho_test`)
and the whole held-out date (`ho`), from whole-scene inference as `predict` does it, beside the random forest and the
majority class. "per-scene" standardises each image by its own valid pixels (label-free); it is measured here only,
not a bundle option (inference would have to compute the statistics of each input scene).

    python benchmarks/training_sweep.py training/configs/landcover-s2l1c-slovenia.toml \\
        '{"d3_global": {"model": {"encoder_depth": 3, "decoder_channels": [32, 16, 16]}}}' [HOLDOUT]
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geovigie.models import Architecture, Normalisation, build_network
from geovigie.training import class_weights_for, confusion_matrix, load_scenes, normalisation_of, parse_config, scores
from geovigie.training import spatial_split as split_scenes
from geovigie.training._config import Candidate
from geovigie.training._evaluate import scene_logits
from geovigie.training._pixels import PixelCandidate
from geovigie.training._samplers import ChipSampler
from geovigie.training._trainer import TrainData, fit

IGNORE = 255
CPU = torch.device("cpu")


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if key == "norm":
            continue
        if isinstance(value, dict):
            section = out.setdefault(key, {})
            for k, v in value.items():
                section[k] = {**section.get(k, {}), **v} if isinstance(v, dict) else v
        else:
            out[key] = value
    return out


def main(config_path: Path, variants: dict[str, dict[str, Any]], holdout: str | None) -> None:
    """Print the baselines, then every variant's per-epoch and kept-epoch scores."""
    torch.set_num_threads(2)
    base = tomllib.loads(config_path.read_text(encoding="utf-8"))
    if holdout:
        base["split"]["holdout"] = holdout
    base["output"]["onnx"] = False
    folder = config_path.resolve().parent
    config = parse_config(base, folder)
    scenes, bands = load_scenes(config)
    sp = config.split
    split = split_scenes(scenes, mode=sp.mode, block_px=sp.block_px, buffer_px=sp.buffer_px,
                         val_fraction=sp.val_fraction, test_fraction=sp.test_fraction, seed=sp.seed,
                         holdout=sp.holdout)
    names, by_name = config.class_names, {s.name: s for s in scenes}
    seen = [s for s in scenes if not split[s.name].heldout]
    held = [s for s in scenes if split[s.name].heldout]
    sets = {"train": {s.name: split[s.name].train for s in seen}, "val": {s.name: split[s.name].val for s in seen},
            "test": {s.name: split[s.name].test for s in seen}, "ho_test": {s.name: split[s.name].test for s in held},
            "ho": {s.name: np.ones_like(split[s.name].test) for s in held}}

    def score(maps: dict[str, np.ndarray]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, masks in sets.items():
            if not masks:
                continue
            matrix = sum(confusion_matrix(np.where(m, by_name[n].labels, IGNORE), maps[n], len(names), IGNORE)
                         for n, m in masks.items())
            result = scores(matrix, names)
            out[key] = (round(result["overall_accuracy"], 3), round(result["miou"], 3))
            out[f"{key}_cm"] = matrix.tolist()
        return out

    def short(result: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in result.items() if not k.endswith("_cm")}

    train_masks = [split[s.name].train for s in scenes]
    forest = PixelCandidate(Candidate(name="random_forest", kind="random-forest"), bands, len(names), 0)
    forest.fit([s.image for s in scenes], [s.labels for s in scenes], train_masks)
    y = np.concatenate([s.labels[m] for s, m in zip(scenes, train_masks, strict=True)])
    majority = int(np.bincount(y[y != IGNORE]).argmax())
    print("random forest", short(score({s.name: forest.probabilities(s.image).argmax(0).astype(np.uint8)
                                        for s in scenes})), flush=True)
    print("majority class", short(score({s.name: np.full(s.labels.shape, majority, np.uint8) for s in scenes})))
    labels = [s.labels for s in scenes]
    counts = np.bincount(np.concatenate([lab[m] for lab, m in zip(labels, train_masks, strict=True)]),
                         minlength=256)[: len(names)]
    for name, over in variants.items():
        experiment = parse_config(_merge(base, over), folder)
        opt = experiment.train
        kind = over.get("norm", "global")
        images = [s.image for s in scenes]
        if kind == "per-scene":  # each scene standardised by its own valid pixels
            images = [((im - im[:, s.valid].mean(1)[:, None, None]) / im[:, s.valid].std(1)[:, None, None])
                      .astype(np.float32) for im, s in zip(images, scenes, strict=True)]
            norm = Normalisation(mean=[0.0] * len(bands), std=[1.0] * len(bands))
        else:
            norm = normalisation_of(images, train_masks, kind)
        data = TrainData(images, ChipSampler(labels, train_masks, opt.chip_size, len(names)),
                         ChipSampler(labels, [split[s.name].val for s in scenes], opt.chip_size, len(names)), norm,
                         class_weights_for(counts, opt.class_weights), names)
        torch.manual_seed(opt.seed)
        network = build_network(Architecture(**experiment.model.model_dump()), len(bands), len(names))

        def maps() -> dict[str, np.ndarray]:
            return {s.name: scene_logits(network, im, norm, CPU).argmax(0).astype(np.uint8)  # noqa: B023
                    for s, im in zip(scenes, images, strict=True)}  # noqa: B023

        def on_epoch(epoch: int) -> None:
            network.eval()  # noqa: B023
            result = score(maps())
            network.train()  # noqa: B023
            print(f"  {name} epoch {epoch}", short(result), flush=True)  # noqa: B023

        started = time.perf_counter()
        fitted = fit(network, data, opt, CPU, Path(tempfile.mkdtemp()), config_hash="sweep", progress=False,
                     on_epoch=on_epoch)
        result = score(maps())
        print(f"== {name}: {time.perf_counter() - started:.0f} s, kept epoch {fitted.best_epoch}, "
              f"train loss {[round(h['train_loss'], 3) for h in fitted.history]}")
        print(f"== {name} kept", short(result), flush=True)
        print(f"== {name} confusion test {result['test_cm']} held-out test {result.get('ho_test_cm')}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
