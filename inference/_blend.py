"""Blended tile logits into class and probability rasters (the workers blend their chunks, `inference._worker`)."""

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
