"""Augmentations: flips and quarter turns, and radiometric jitter (per-band gain and offset, haze) in raw units."""

from __future__ import annotations

import numpy as np

from geovigie.training._config import Augment


def radiometric(image: np.ndarray, rng: np.random.Generator, aug: Augment, band_std: np.ndarray,
                veil: np.ndarray) -> np.ndarray:
    """Raw (bands, H, W) values seen through another sensor state and atmosphere.

    With probability `aug.probability`: `x * gain + offset` per band (gain in 1 ± aug.gain, offset within ±aug.offset
    band standard deviations), then a haze veil `(1 - t) x + t veil` with t in [0, aug.haze] and `veil` the scene's
    bright (99th percentile) value per band. Otherwise unchanged.
    """
    if rng.random() >= aug.probability:
        return image
    bands = image.shape[0]
    gain = np.asarray(rng.uniform(1 - aug.gain, 1 + aug.gain, size=bands), dtype=np.float32)
    offset = np.asarray(rng.uniform(-aug.offset, aug.offset, size=bands) * band_std, dtype=np.float32)
    out = image * gain[:, None, None] + offset[:, None, None]
    t = np.float32(rng.uniform(0, aug.haze)) if aug.haze else np.float32(0)
    if t:
        out = (1 - t) * out + t * veil[:, None, None]
    return out.astype(np.float32)


def geometric(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
              aug: Augment) -> tuple[np.ndarray, np.ndarray]:
    """The same random quarter turn and horizontal flip of image (bands, H, W) and labels (H, W)."""
    k = int(rng.integers(4))
    flip = rng.random() < 0.5
    if aug.rot90 and k:
        image, labels = np.rot90(image, k, axes=(1, 2)), np.rot90(labels, k)
    if aug.flips and flip:
        image, labels = image[:, :, ::-1], labels[:, ::-1]
    return image, labels
