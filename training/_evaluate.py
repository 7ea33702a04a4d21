"""Held-out evaluation of the network beside the non-deep baselines (per-pixel random forest, majority class).

Sets: `validation` (val blocks), `test_blocks` (test blocks of the trained dates / areas), `heldout` (whole held-out
dates or areas), `heldout_test_blocks` (held-out dates on test blocks: neither the date nor the place was seen) and
`heldout_space` (the labelled polygons of a held-out spatial fold: the same date, places never trained on).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from geovigie.models import Normalisation, forward, normalise
from geovigie.training._metrics import confusion_matrix, object_scores, scores
from geovigie.training._split import SceneSplit
from geovigie.training._targets import IGNORE

TILE, OVERLAP = 512, 64


def scene_logits(network: torch.nn.Module, image: np.ndarray, norm: Normalisation, device: torch.device,
                 amp: bool = False) -> np.ndarray:
    """Logits (classes, H, W) of a raw scene (bands, H, W), tiled (512 px, overlaps averaged) when large."""
    _, height, width = image.shape
    if height <= TILE and width <= TILE:
        return forward(network, normalise(norm, image[None].astype(np.float32, copy=True)), device, amp)[0]
    total: np.ndarray | None = None
    count = np.zeros((height, width), dtype=np.float32)
    step = TILE - OVERLAP
    for top in sorted({*range(0, max(1, height - TILE + 1), step), max(0, height - TILE)}):
        for left in sorted({*range(0, max(1, width - TILE + 1), step), max(0, width - TILE)}):
            tile = image[:, top : top + TILE, left : left + TILE][None].astype(np.float32, copy=True)
            logits = forward(network, normalise(norm, tile), device, amp)[0]
            if total is None:
                total = np.zeros((logits.shape[0], height, width), dtype=np.float32)
            total[:, top : top + TILE, left : left + TILE] += logits
            count[top : top + TILE, left : left + TILE] += 1
    assert total is not None
    return total / count


def set_masks(split: dict[str, SceneSplit]) -> dict[str, dict[str, np.ndarray]]:
    """Evaluation set -> scene name -> mask (sets without any pixel are left out)."""
    sets: dict[str, dict[str, np.ndarray]] = {"validation": {}, "test_blocks": {}, "heldout": {},
                                              "heldout_test_blocks": {}, "heldout_space": {}}
    for name, masks in split.items():
        if masks.space:
            sets["validation"][name] = masks.val
            sets["heldout_space"][name] = masks.test
        elif masks.heldout:
            sets["heldout"][name] = np.ones_like(masks.test)
            sets["heldout_test_blocks"][name] = masks.test
        else:
            sets["validation"][name] = masks.val
            sets["test_blocks"][name] = masks.test
    return {k: v for k, v in sets.items() if any(m.any() for m in v.values())}


@dataclass
class Predictions:
    """Class maps (H, W) per scene of one model."""

    name: str
    maps: dict[str, np.ndarray]


def score_set(pred: Predictions, labels: dict[str, np.ndarray], masks: dict[str, np.ndarray],
              class_names: list[str]) -> dict[str, object]:
    """Metrics of one model on one set: scores, confusion matrix, per-scene accuracy, objects (binary tasks)."""
    n = len(class_names)
    total = np.zeros((n, n), dtype=np.int64)
    per_scene: dict[str, float | None] = {}
    objects = dict.fromkeys(("predicted_objects", "labelled_objects", "true_detections", "found_objects"), 0)
    for scene, mask in masks.items():
        if scene not in pred.maps:  # not predicted (a multi-date model on an area's first pass): not scored there
            per_scene[scene] = None
            continue
        truth = np.where(mask, labels[scene], IGNORE)
        matrix = confusion_matrix(truth, pred.maps[scene], n, IGNORE)
        total += matrix
        accuracy = scores(matrix, class_names)["overall_accuracy"]
        per_scene[scene] = None if accuracy is None else float(accuracy)  # type: ignore[arg-type]
        if n == 2:
            obj = object_scores(truth, pred.maps[scene], positive=1, ignore=IGNORE)
            for key in objects:
                objects[key] += int(obj[key])  # type: ignore[call-overload]
    result = {**scores(total, class_names), "overall_accuracy_per_scene": per_scene, "confusion_matrix": total.tolist()}
    if n == 2:
        pred_n, truth_n = objects["predicted_objects"], objects["labelled_objects"]
        result["objects"] = {**objects, "object_precision": objects["true_detections"] / pred_n if pred_n else None,
                             "object_recall": objects["found_objects"] / truth_n if truth_n else None}
    return result


def evaluate(models: list[Predictions], labels: dict[str, np.ndarray], split: dict[str, SceneSplit],
             class_names: list[str]) -> dict[str, dict[str, object]]:
    """set -> model name -> metrics, for every non-empty evaluation set."""
    return {set_name: {p.name: score_set(p, labels, masks, class_names) for p in models}
            for set_name, masks in set_masks(split).items()}
