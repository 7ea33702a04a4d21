"""Geo-samplers over a set mask: random or grid chip windows, optionally class-balanced, seeded per epoch.

A chip is `(scene index, row, col)` of its top-left corner. An epoch's list depends only on (seed, epoch), so a
resumed run draws the same chips; under DDP each rank takes every `world`-th chip of the same list.
"""

from __future__ import annotations

import numpy as np
import torch

from geovigie.models import Normalisation, normalise
from geovigie.training._augment import geometric, radiometric
from geovigie.training._config import Augment
from geovigie.training._targets import IGNORE, pad_chip

Chip = tuple[int, int, int]


class ChipSampler:
    """Draws chip windows whose centre is a labelled pixel of the set (random), or tiles the set (grid)."""

    def __init__(self, labels: list[np.ndarray], masks: list[np.ndarray], size: int, num_classes: int) -> None:
        self.size = size
        self.shapes = [lab.shape for lab in labels]
        self.labels = [np.where(m, lab, IGNORE) for lab, m in zip(labels, masks, strict=True)]
        pixels = [(i, np.flatnonzero(lab != IGNORE)) for i, lab in enumerate(self.labels)]
        self.scene_of = np.concatenate([np.full(len(p), i, dtype=np.int32) for i, p in pixels])
        self.flat = np.concatenate([p for _, p in pixels])
        classes = np.concatenate([lab.ravel()[p] for lab, (_, p) in zip(self.labels, pixels, strict=True)])
        self.by_class = {c: np.flatnonzero(classes == c) for c in range(num_classes) if (classes == c).any()}
        self._grid = self._grid_chips()

    @property
    def empty(self) -> bool:
        """No labelled pixel in the set."""
        return len(self.flat) == 0

    def _window(self, scene: int, flat: int) -> Chip:
        height, width = self.shapes[scene]
        row, col = divmod(int(flat), width)
        top = min(max(0, row - self.size // 2), max(0, height - self.size))
        left = min(max(0, col - self.size // 2), max(0, width - self.size))
        return scene, top, left

    def _grid_chips(self) -> list[Chip]:
        chips = []
        for scene, (height, width) in enumerate(self.shapes):
            rows = sorted({*range(0, max(1, height - self.size + 1), self.size), max(0, height - self.size)})
            cols = sorted({*range(0, max(1, width - self.size + 1), self.size), max(0, width - self.size)})
            for r in rows:
                for c in cols:
                    if (self.labels[scene][r : r + self.size, c : c + self.size] != IGNORE).any():
                        chips.append((scene, r, c))
        return chips

    def grid(self, limit: int | None = None) -> list[Chip]:
        """Every grid tile holding a labelled pixel of the set (at most `limit`, evenly spread)."""
        if limit is None or len(self._grid) <= limit:
            return list(self._grid)
        keep = np.linspace(0, len(self._grid) - 1, limit).round().astype(int)
        return [self._grid[i] for i in keep]

    def epoch(self, count: int, *, mode: str, balanced: bool, seed: int, epoch: int) -> list[Chip]:
        """`count` chips for one epoch (seeded by seed and epoch)."""
        rng = np.random.default_rng((seed, epoch, 17))
        if mode == "grid":
            order = rng.permutation(len(self._grid))
            return [self._grid[order[i % len(order)]] for i in range(count)]
        if balanced:
            classes = sorted(self.by_class)
            drawn = rng.integers(len(classes), size=count)
            picks = [self.by_class[classes[k]][rng.integers(len(self.by_class[classes[k]]))] for k in drawn]
        else:
            picks = rng.integers(len(self.flat), size=count).tolist()
        return [self._window(int(self.scene_of[p]), int(self.flat[p])) for p in picks]


class ChipDataset(torch.utils.data.Dataset):
    """Normalised, augmented chips of a chip list; labels outside the set are IGNORE."""

    def __init__(self, images: list[np.ndarray], sampler: ChipSampler, chips: list[Chip], norm: Normalisation,
                 augment: Augment | None, seed: int, epoch: int) -> None:
        self.images, self.sampler, self.chips, self.norm = images, sampler, chips, norm
        self.augment, self.seed, self.epoch = augment, seed, epoch
        self.std = np.asarray(norm.std, dtype=np.float32) / np.float32(norm.scale)
        self.veil = [np.percentile(img.reshape(img.shape[0], -1), 99, axis=1).astype(np.float32) for img in images]

    def __len__(self) -> int:
        return len(self.chips)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        scene, top, left = self.chips[index]
        size = self.sampler.size
        window = np.s_[top : top + size, left : left + size]
        image = self.images[scene][(slice(None), *window)].copy()
        labels = self.sampler.labels[scene][window].astype(np.int64)
        if self.augment is not None:
            rng = np.random.default_rng((self.seed, self.epoch, index, 29))
            image = radiometric(image, rng, self.augment, self.std, self.veil[scene])
            image, labels = geometric(image, labels, rng, self.augment)
        image = normalise(self.norm, np.ascontiguousarray(image, dtype=np.float32))
        image, labels = pad_chip(image, labels, size)
        return torch.from_numpy(np.ascontiguousarray(image)), torch.from_numpy(np.ascontiguousarray(labels))

