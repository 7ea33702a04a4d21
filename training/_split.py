"""Spatial-block train/validation splits: neighbouring pixels never straddle the split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from geovigie.errors import InvalidInputError


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Square (Chebyshev) dilation of a boolean mask by `radius` pixels."""
    if radius <= 0:
        return mask.copy()
    padded = np.pad(mask, radius)
    out = np.zeros_like(mask)
    height, width = mask.shape
    for dr in range(2 * radius + 1):
        for dc in range(2 * radius + 1):
            out |= padded[dr : dr + height, dc : dc + width]
    return out


class EmptySplitError(InvalidInputError):
    """A split leaves no labelled pixel to train on, to validate or to test."""


@dataclass
class SceneSplit:
    """Boolean masks of one scene: train, val, test blocks; `heldout` when the whole scene is held out."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    heldout: bool = False


def _block_ids(grid: Any, origin: tuple[float, float], block_m: float) -> np.ndarray:
    """(H, W) int64 ids of the world-aligned square block holding each pixel centre."""
    cols = np.arange(grid.width) + 0.5
    rows = np.arange(grid.height) + 0.5
    xs = grid.transform.c + cols * grid.transform.a
    ys = grid.transform.f + rows * grid.transform.e
    bx = np.floor((xs - origin[0]) / block_m).astype(np.int64)
    by = np.floor((origin[1] - ys) / block_m).astype(np.int64)
    return (by[:, None] + 1_000_000) * 2_000_000 + (bx[None, :] + 1_000_000)


def spatial_split(scenes: list[Any], *, mode: str = "blocks", block_px: int, buffer_px: int, val_fraction: float,
                  test_fraction: float, seed: int, holdout: str | None = None) -> dict[str, SceneSplit]:
    """Train / val / test masks for every scene, from square blocks aligned in map coordinates.

    Blocks are the same on every scene of the same place (dates share them), assigned at random (seeded) with
    exact counts: `test_fraction` of the blocks to test, `val_fraction` to validation. Validation pixels within
    `buffer_px` of a test block and training pixels within `buffer_px` of a validation or test block are dropped,
    so no chip straddles two sets. In `leave-one-date-out` / `leave-one-area-out` modes the scenes whose date /
    area equals `holdout` are held out whole (never trained or validated on).

    Raises:
        EmptySplitError: `holdout` matches no scene, or every scene is held out.
    """
    first = scenes[0].grid
    block_m = block_px * abs(first.transform.a)
    origin = (first.transform.c, first.transform.f)
    ids = {s.name: _block_ids(s.grid, origin, block_m) for s in scenes}
    held = set()
    if mode != "blocks":
        key = "date" if mode == "leave-one-date-out" else "area"
        held = {s.name for s in scenes if getattr(s, key) == holdout}
        if not held:
            raise EmptySplitError(f"split.holdout = {holdout!r} matches no image {key} "
                                  f"(the {key}s are {sorted({getattr(s, key) for s in scenes})})")
        if len(held) == len(scenes):
            raise EmptySplitError(f"split.holdout = {holdout!r} holds out every image: nothing left to train on")
    blocks = np.unique(np.concatenate([ids[s.name][s.valid].ravel() for s in scenes]))
    rng = np.random.default_rng(seed)
    order = rng.permutation(blocks)
    n_test = round(len(order) * test_fraction) if test_fraction else 0
    n_val = round(len(order) * val_fraction) if val_fraction else 0
    n_test, n_val = max(n_test, 1 if test_fraction else 0), max(n_val, 1 if val_fraction else 0)
    test_blocks, val_blocks = order[:n_test], order[n_test:n_test + n_val]
    result = {}
    for scene in scenes:
        block = ids[scene.name]
        test = np.isin(block, test_blocks) & scene.valid
        val = np.isin(block, val_blocks) & scene.valid & ~dilate(test, buffer_px)
        train = scene.valid & ~dilate(test | np.isin(block, val_blocks), buffer_px)
        if scene.name in held:
            result[scene.name] = SceneSplit(np.zeros_like(train), np.zeros_like(val), test, heldout=True)
        else:
            result[scene.name] = SceneSplit(train, val, test)
    return result


def check_split(scenes: list[Any], split: dict[str, SceneSplit], ignore: int, *, need_val: bool) -> dict[str, int]:
    """Labelled pixel counts per set; an empty training (or, when needed, validation) set is an error."""
    counts = {"train": 0, "val": 0, "test_blocks": 0, "heldout": 0}
    for scene in scenes:
        masks = split[scene.name]
        labelled = scene.labels != ignore
        counts["train"] += int((masks.train & labelled).sum())
        counts["val"] += int((masks.val & labelled).sum())
        counts["test_blocks"] += int((masks.test & labelled).sum())
        if masks.heldout:
            counts["heldout"] += int(labelled.sum())
    if counts["train"] == 0:
        raise EmptySplitError("empty split: no labelled pixel left to train on; lower split.block_px, "
                              "split.val_fraction / test_fraction or split.buffer_px, or add labels")
    if need_val and counts["val"] == 0:
        raise EmptySplitError("empty split: no labelled pixel in the validation blocks; raise split.val_fraction or "
                              "lower split.block_px")
    return counts
