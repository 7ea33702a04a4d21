"""Spatial-block train/validation splits: neighbouring pixels never straddle the split."""

from __future__ import annotations

import numpy as np


def block_split(
    height: int, width: int, *, block: int, val_fraction: float, buffer: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Assign square blocks to validation at random (seeded); the rest, minus a buffer, to training.

    Returns:
        (train, val) boolean masks of shape (height, width); pixels within `buffer` of a
        validation block belong to neither.
    """
    rows, cols = -(-height // block), -(-width // block)
    rng = np.random.default_rng(seed)
    n_val = max(1, round(rows * cols * val_fraction))
    chosen = np.zeros(rows * cols, dtype=bool)
    chosen[rng.choice(rows * cols, size=n_val, replace=False)] = True
    val = np.kron(chosen.reshape(rows, cols), np.ones((block, block), dtype=bool))[:height, :width]
    near_val = dilate(val, buffer)
    return ~near_val, val


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
