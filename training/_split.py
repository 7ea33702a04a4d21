"""Spatial-block train/validation splits: neighbouring pixels never straddle the split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from geovigie.errors import InvalidInputError
from geovigie.training._targets import IGNORE


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
    """Boolean masks of one scene: train, val, test blocks; `heldout` when the whole scene is held out; `space` when
    `test` holds the whole labelled polygons of a held-out spatial fold."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    heldout: bool = False
    space: bool = False


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
                  test_fraction: float, seed: int, holdout: str | None = None, folds: int = 5,
                  class_names: list[str] | None = None) -> dict[str, SceneSplit]:
    """Train / val / test masks for every scene, from square blocks aligned in map coordinates.

    Blocks are the same on every scene of the same place (dates share them), assigned at random (seeded) with
    exact counts: `test_fraction` of the blocks to test, `val_fraction` to validation. Validation pixels within
    `buffer_px` of a test block and training pixels within `buffer_px` of a validation or test block are dropped,
    so no chip straddles two sets. In `leave-one-date-out` / `leave-one-area-out` modes the scenes whose date /
    area equals `holdout` are held out whole (never trained or validated on). In `spatial-folds` mode the labelled
    polygons are held out instead (`spatial_folds`).

    Raises:
        EmptySplitError: `holdout` matches no scene, or every scene is held out; a bad spatial fold.
    """
    first = scenes[0].grid
    block_m = block_px * abs(first.transform.a)
    origin = (first.transform.c, first.transform.f)
    ids = {s.name: _block_ids(s.grid, origin, block_m) for s in scenes}
    if mode == "spatial-folds":
        return spatial_folds(scenes, ids, folds=folds, holdout=holdout or "1", buffer_px=buffer_px,
                             val_fraction=val_fraction, seed=seed, class_names=class_names)
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


def polygon_units(scene: Any, block: np.ndarray) -> np.ndarray:
    """(H, W) unit of every labelled pixel (-1 elsewhere): the id of the map-aligned block that holds the centre of
    its polygon (8-connected labelled pixels, any class), so that a polygon never straddles two units."""
    from scipy import ndimage

    labelled = scene.valid & (scene.labels != IGNORE)
    components, count = ndimage.label(labelled, structure=np.ones((3, 3), dtype=bool))
    units = np.full(labelled.shape, -1, dtype=np.int64)
    if not count:
        return units
    index = np.arange(1, count + 1)
    rows = np.rint(ndimage.mean(np.indices(labelled.shape)[0], components, index)).astype(np.int64)
    cols = np.rint(ndimage.mean(np.indices(labelled.shape)[1], components, index)).astype(np.int64)
    return np.concatenate([[-1], block[rows, cols]])[components]


def spatial_folds(scenes: list[Any], ids: dict[str, np.ndarray], *, folds: int, holdout: str, buffer_px: int,
                  val_fraction: float, seed: int, class_names: list[str] | None = None) -> dict[str, SceneSplit]:
    """Fold `holdout` (1..folds) of leave-one-group-out spatial cross-validation: whole labelled polygons, grouped by
    the block of their centre (`polygon_units`), are dealt to `folds` folds (seeded order, each unit to the fold
    with the fewest labelled pixels so far); the held-out fold's polygons are the test set, `val_fraction` of the
    other units (seeded) validate, and every pixel within `buffer_px` of them is left out of training. Every fold is
    checked before any is returned, so a bad fold fails before training starts.

    Raises:
        EmptySplitError: `holdout` is not a fold number, fewer units than folds, or a fold that leaves a class with
            labels out of training.
    """
    if holdout not in [str(k) for k in range(1, folds + 1)]:
        raise EmptySplitError(f"split.holdout = {holdout!r} is not a spatial fold: give 'all' or a number from 1 to "
                              f"{folds} (split.folds)")
    units = {s.name: polygon_units(s, ids[s.name]) for s in scenes}
    pooled = np.concatenate([u[u >= 0] for u in units.values()])
    names, sizes = np.unique(pooled, return_counts=True)
    if len(names) < folds:
        raise EmptySplitError(f"split.folds = {folds} but the labels form only {len(names)} group(s) of polygons "
                              f"(blocks of the split.block_px grid holding a polygon centre): lower split.folds or "
                              "split.block_px, or add labels")
    rng = np.random.default_rng(seed)
    load, fold_of = np.zeros(folds, dtype=np.int64), {}
    for k in rng.permutation(len(names)):
        target = int(np.argmin(load))
        fold_of[int(names[k])], load[target] = target + 1, load[target] + sizes[k]
    chosen: dict[str, SceneSplit] = {}
    for fold in range(1, folds + 1):
        held_units = np.array([u for u, f in fold_of.items() if f == fold])
        rest = rng.permutation(np.array(sorted(u for u, f in fold_of.items() if f != fold)))
        n_val = max(round(len(rest) * val_fraction), 1) if val_fraction else 0
        val_units = rest[:n_val]
        result = {}
        for scene in scenes:
            held = np.isin(units[scene.name], held_units)
            val = np.isin(units[scene.name], val_units) & ~dilate(held, buffer_px)
            train = scene.valid & ~dilate(held | np.isin(units[scene.name], val_units), buffer_px)
            result[scene.name] = SceneSplit(train, val, held, space=True)
        _check_classes(scenes, result, fold, class_names)
        if str(fold) == holdout:
            chosen = result
    return chosen


def _check_classes(scenes: list[Any], split: dict[str, SceneSplit], fold: int, class_names: list[str] | None) -> None:
    labelled = np.concatenate([s.labels[s.labels != IGNORE].ravel() for s in scenes]).astype(np.int64)
    trained = np.concatenate([s.labels[split[s.name].train & (s.labels != IGNORE)] for s in scenes]).astype(np.int64)
    missing = sorted(set(np.unique(labelled).tolist()) - set(np.unique(trained).tolist()))
    if missing:
        named = [class_names[c] if class_names else str(c) for c in missing]
        raise EmptySplitError(f"spatial fold {fold} leaves class(es) {named} out of training (all their labelled "
                              "polygons are held out, validated or within split.buffer_px of them): change "
                              "split.seed, split.folds or split.block_px, or add labels")


def check_split(scenes: list[Any], split: dict[str, SceneSplit], ignore: int, *, need_val: bool) -> dict[str, int]:
    """Labelled pixel counts per set; an empty training (or, when needed, validation) set is an error."""
    counts = {"train": 0, "val": 0, "test_blocks": 0, "heldout": 0}
    for scene in scenes:
        masks = split[scene.name]
        labelled = scene.labels != ignore
        counts["train"] += int((masks.train & labelled).sum())
        counts["val"] += int((masks.val & labelled).sum())
        if masks.space:
            counts["heldout"] += int((masks.test & labelled).sum())
        else:
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
