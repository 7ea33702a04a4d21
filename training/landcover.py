"""Recipe of the baseline land-cover bundle, trained on the real Slovenia scenes shipped in `data/`.

Rerun with `geovigie train-landcover` (about a minute on 2 CPU cores).
"""

from __future__ import annotations

import platform
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pystac
import rasterio
import torch

from geovigie.catalog import SLOVENIA, SLOVENIA_LABELS, CatalogClient
from geovigie.errors import EmptySearchError
from geovigie.models import (
    Architecture,
    ClassInfo,
    ModelBundle,
    ModelCard,
    Normalisation,
    build_network,
    forward,
    normalise,
    resolve_device,
    save_bundle,
)
from geovigie.training._chips import IGNORE, LabelledScene, RandomChips
from geovigie.training._loop import TrainConfig, class_weights, train
from geovigie.training._metrics import confusion_matrix, scores
from geovigie.training._split import block_split

# source label value -> contiguous class value of the model
SOURCE_TO_CLASS = {label.value: index for index, label in enumerate(SLOVENIA_LABELS)}
LABELS = {label.value: label for label in SLOVENIA_LABELS}
TRAIN_SCENES = ("slovenia-reference-scene-1", "slovenia-reference-scene-2", "slovenia-reference-scene-3")
BLOCK, VAL_FRACTION, BUFFER, SPLIT_SEED = 20, 0.3, 3, 7


def _read_scene(item: pystac.Item) -> LabelledScene:
    with rasterio.open(item.assets["data"].href) as src:
        image = src.read().astype(np.float32)
    with rasterio.open(item.assets["labels"].href) as src:
        raw = src.read(1)
    labels = np.full(raw.shape, IGNORE, dtype=np.uint8)
    for source_value, class_value in SOURCE_TO_CLASS.items():
        labels[raw == source_value] = class_value
    return LabelledScene(item.id, image, labels)


def _evaluate(network: torch.nn.Module, scenes: list[LabelledScene], mask: np.ndarray, norm: Normalisation,
              names: list[str], device: torch.device) -> dict[str, object]:
    total = np.zeros((len(names), len(names)), dtype=np.int64)
    per_scene = {}
    for scene in scenes:
        batch = normalise(norm, scene.image[None].astype(np.float32, copy=True))
        pred = forward(network, batch, device, amp=False)[0].argmax(axis=0)
        truth = np.where(mask, scene.labels, IGNORE)
        matrix = confusion_matrix(truth, pred, len(names))
        total += matrix
        per_scene[scene.name] = scores(matrix, names)["overall_accuracy"]
    return {**scores(total, names), "overall_accuracy_per_scene": per_scene, "confusion_matrix": total.tolist()}


def train_landcover_baseline(
    catalog: str | Path, out_dir: str | Path, *, config: TrainConfig | None = None, device: str = "auto",
    progress: bool = True, architecture: Architecture | None = None,
) -> ModelBundle:
    """Train the baseline land-cover bundle on the Slovenia scenes of `catalog` and write it to `out_dir`."""
    config = config or TrainConfig()
    torch.manual_seed(config.seed)
    client = CatalogClient.open(catalog)
    items = {i.id: i for i in client.search(collections=[SLOVENIA], max_items=None).item_list()}
    missing = [s for s in TRAIN_SCENES if s not in items]
    if missing:
        raise EmptySearchError(f"training scenes {missing} not in {catalog}")
    scenes = [_read_scene(items[s]) for s in TRAIN_SCENES]
    bands = [band["name"] for band in items[TRAIN_SCENES[0]].assets["data"].extra_fields["eo:bands"]]
    _, height, width = scenes[0].image.shape
    train_mask, val_mask = block_split(height, width, block=BLOCK, val_fraction=VAL_FRACTION, buffer=BUFFER,
                                       seed=SPLIT_SEED)
    pixels = np.concatenate([s.image[:, train_mask] for s in scenes], axis=1)
    norm = Normalisation(scale=1.0, mean=pixels.mean(axis=1).tolist(), std=(pixels.std(axis=1) + 1e-6).tolist())
    normalised = [LabelledScene(s.name, normalise(norm, s.image.copy()), s.labels) for s in scenes]

    class_names = [LABELS[v].name for v in SOURCE_TO_CLASS]
    arch = architecture or Architecture()
    network = build_network(arch, len(bands), len(class_names))
    train_labels = np.stack([np.where(train_mask, s.labels, IGNORE) for s in scenes])
    weights = class_weights(train_labels, len(class_names))
    torch_device = resolve_device(device)
    chips = RandomChips(normalised, train_mask, size=64, length=config.steps * config.batch_size, seed=config.seed)
    losses = train(network, chips, weights, config, torch_device, progress=progress)
    metrics = {
        "validation": _evaluate(network, scenes, val_mask, norm, class_names, torch_device),
        "training_pixels_seen": _evaluate(network, scenes, train_mask, norm, class_names, torch_device),
        "final_loss_mean_last_50_steps": float(np.mean(losses[-50:])),
    }
    train_counts = np.bincount(train_labels[train_labels != IGNORE].ravel(), minlength=len(class_names))
    card = ModelCard(
        name="landcover-s2l1c-slovenia",
        version="1",
        architecture=arch,
        bands=bands,
        product_level="L1C",
        normalisation=norm,
        input_range=(0.0, 1.5),
        input_dtype="float",
        input_units="Sentinel-2 L1C top-of-atmosphere reflectance",
        pixel_size_m=10.0,
        classes=[ClassInfo(value=i, name=n, color=LABELS[v].color, description=f"source label {v}")
                 for i, (v, n) in enumerate(zip(SOURCE_TO_CLASS, class_names, strict=True))],
        ignore_value=IGNORE,
        provenance={
            "data": "eo-learn example patch, Slovenia: 3 Sentinel-2 L1C scenes (reference_scene_1..3) of "
                    "100 x 101 px at 10 m (about 1 km2) and MKGP RABA land-use labels; scene 0 (cloudy) unused",
            "catalog_items": list(TRAIN_SCENES),
            "split": f"spatial blocks of {BLOCK} px, {VAL_FRACTION:.0%} of blocks held out for validation "
                     f"(seed {SPLIT_SEED}), {BUFFER} px buffer around them unused; the same blocks in every scene",
            "train_label_pixels_per_class": dict(zip(class_names, train_counts.tolist(), strict=True)),
            "training": asdict(config) | {"device": str(torch_device), "chip_size": 64,
                                          "loss": "cross-entropy, inverse-sqrt class weights"},
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "software": {"torch": torch.__version__, "python": platform.python_version()},
            "command": "geovigie train-landcover",
        },
        metrics=metrics,
        limitations=(
            "Trained on about 1 km2 of one Slovenian landscape (3 dates of the same 100 x 101 px patch); "
            "validation blocks are neighbours of training blocks in the same patch, so these metrics are "
            "optimistic and say nothing about other regions, seasons or sensors. Cultivated land has 11 labelled "
            "pixels in all. A demonstration baseline, not a production land-cover model."
        ),
    )
    return save_bundle(out_dir, network.cpu(), card)
