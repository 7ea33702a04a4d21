"""Label conventions every training module shares: the ignored label, chip padding, class weights."""

from __future__ import annotations

import numpy as np
import torch

from geovigie.types import NODATA_CLASS

IGNORE = NODATA_CLASS
"""Label value ignored by the losses and the metrics: the class-map nodata value."""


def pad_chip(image: np.ndarray, labels: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pad a chip cut at a scene edge to `size`²: zeros in the (normalised) image, IGNORE in the labels."""
    pad_h, pad_w = max(0, size - image.shape[1]), max(0, size - image.shape[2])
    if not pad_h and not pad_w:
        return image, labels
    return (np.pad(image, ((0, 0), (0, pad_h), (0, pad_w))),
            np.pad(labels, ((0, pad_h), (0, pad_w)), constant_values=IGNORE))


def class_weights_for(counts: np.ndarray, spec: str | list[float]) -> torch.Tensor:
    """`auto`: inverse square-root frequency, mean 1 over present classes (absent: 0); `none`: 1; or the list."""
    if isinstance(spec, list):
        return torch.tensor(spec, dtype=torch.float32)
    present = counts > 0
    if spec == "none":
        return torch.tensor(present.astype(np.float32))
    weights = np.where(present, 1.0 / np.sqrt(np.maximum(counts, 1)), 0.0)
    weights *= present.sum() / max(weights.sum(), 1e-12)
    return torch.tensor(weights, dtype=torch.float32)
