"""Streaming blend of overlapping tile logits into class and probability rasters.

Only a strip one tile high and the raster's width wide is held: rows are written as soon as
no later tile can touch them, so memory does not grow with the raster's height.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from geovigie.models import softmax
from geovigie.types import NODATA_CLASS, NODATA_PROBA, PROBA_SCALE

RowsWriter = Callable[[int, np.ndarray, np.ndarray], None]
"""Called with (first row, class rows (h, W) uint8, probability rows (C, h, W) uint8)."""


def finalise(logit_sum: np.ndarray, weight_sum: np.ndarray, valid: np.ndarray,
             inplace: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Blended logits -> (class map uint8, probabilities uint8 0-250), 255 where invalid.

    `inplace`: `logit_sum` (float32) is overwritten instead of copied (the same values, one float array less).
    """
    weights = np.maximum(weight_sum, 1e-12)[None]
    logits = np.divide(logit_sum, weights, out=logit_sum) if inplace else logit_sum / weights
    logits = softmax(logits, axis=0, inplace=True)  # the logits are calibrated already (the predictor divided them)
    classes = logits.argmax(axis=0).astype(np.uint8)
    logits *= np.float32(PROBA_SCALE)
    proba = np.rint(logits, out=logits).astype(np.uint8)
    classes[~valid] = NODATA_CLASS
    proba[:, ~valid] = NODATA_PROBA
    return classes, proba


class StripBlender:
    """Accumulates weighted logits of row-major tiles and flushes finished rows to `write`."""

    def __init__(self, width: int, height: int, classes: int, tile_height: int, write: RowsWriter) -> None:
        self.width, self.height, self.tile_height = width, height, tile_height
        self.top = 0  # raster row held at strip row 0
        self.logits = np.zeros((classes, tile_height, width), dtype=np.float32)
        self.weights = np.zeros((tile_height, width), dtype=np.float32)
        self.valid = np.zeros((tile_height, width), dtype=bool)
        self._write = write

    def add(self, row: int, col: int, logits: np.ndarray, valid: np.ndarray, weights: np.ndarray) -> None:
        """Add one tile's logits (classes, h, w) at raster (row, col); tiles must come in row order."""
        if row < self.top:
            raise ValueError(f"tile at row {row} arrived after rows up to {self.top} were written")
        if row > self.top:
            self._flush(row)
        h, w = valid.shape
        r0 = row - self.top
        self.logits[:, r0 : r0 + h, col : col + w] += logits * weights
        self.weights[r0 : r0 + h, col : col + w] += weights
        self.valid[r0 : r0 + h, col : col + w] |= valid

    def _flush(self, new_top: int) -> None:
        """Write rows [top, new_top) and shift the strip up."""
        n = min(new_top, self.height) - self.top
        if n > 0:
            classes, proba = finalise(self.logits[:, :n], self.weights[:n], self.valid[:n])
            self._write(self.top, classes, proba)
            for buf in (self.logits, self.weights, self.valid):
                buf[..., : self.tile_height - n, :] = buf[..., n:, :].copy()
                buf[..., self.tile_height - n :, :] = 0
        self.top = new_top

    def close(self) -> None:
        """Write every remaining row."""
        self._flush(min(self.height, self.top + self.tile_height))
