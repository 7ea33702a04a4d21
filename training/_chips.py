"""Chips for training: random windows of labelled scenes, with labels outside the split ignored."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from geovigie.types import NODATA_CLASS

IGNORE = NODATA_CLASS
"""Label value ignored by the loss and the metrics: the class-map nodata value."""


@dataclass
class LabelledScene:
    """One scene in memory: image (bands, H, W) float32 and labels (H, W) uint8 (255 = ignore)."""

    name: str
    image: np.ndarray
    labels: np.ndarray


class RandomChips(torch.utils.data.Dataset):
    """`length` random chips of `size`² drawn from scenes, labels kept only where `label_mask` is set.

    Chips are flipped and rotated at random. Seeded per index, so an epoch is reproducible.
    """

    def __init__(self, scenes: list[LabelledScene], label_mask: np.ndarray, size: int, length: int, seed: int = 0):
        self.scenes, self.size, self.length, self.seed = scenes, size, length, seed
        self.label_mask = label_mask

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng((self.seed, index))
        scene = self.scenes[rng.integers(len(self.scenes))]
        _, height, width = scene.image.shape
        row = rng.integers(0, max(1, height - self.size + 1))
        col = rng.integers(0, max(1, width - self.size + 1))
        window = np.s_[row : row + self.size, col : col + self.size]
        image = scene.image[(slice(None), *window)]
        labels = np.where(self.label_mask[window], scene.labels[window], IGNORE).astype(np.int64)
        image, labels = _pad(image, labels, self.size)
        k = int(rng.integers(4))
        image, labels = np.rot90(image, k, axes=(1, 2)), np.rot90(labels, k)
        if rng.random() < 0.5:
            image, labels = image[:, :, ::-1], labels[:, ::-1]
        return torch.from_numpy(image.copy()), torch.from_numpy(labels.copy())


def _pad(image: np.ndarray, labels: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    pad_h, pad_w = size - image.shape[1], size - image.shape[2]
    if pad_h <= 0 and pad_w <= 0:
        return image, labels
    image = np.pad(image, ((0, 0), (0, max(pad_h, 0)), (0, max(pad_w, 0))))
    labels = np.pad(labels, ((0, max(pad_h, 0)), (0, max(pad_w, 0))), constant_values=IGNORE)
    return image, labels
