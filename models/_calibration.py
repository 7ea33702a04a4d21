"""Temperature scaling: one positive number T so that softmax(logits / T) means what it says (Guo et al., 2017).

T is fitted by minimising the negative log-likelihood of labelled pixels (the validation blocks); dividing by T
never changes the argmax, so class maps stay the same and only the probabilities move.
"""

from __future__ import annotations

import math

import numpy as np

from geovigie.errors import InvalidInputError
from geovigie.models._card import Calibration

T_MIN, T_MAX = 0.05, 20.0
"""The search interval of the temperature."""
_ITERATIONS = 80
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def _flatten(values: np.ndarray, labels: np.ndarray, ignore: int | None, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Labelled pixels as (N, C) float64 rows and (N,) labels, from (N, C) and (N,) or (B, C, H, W) and (B, H, W)."""
    values, labels = np.asarray(values), np.asarray(labels)
    if values.ndim == 4:
        if labels.shape != (values.shape[0], *values.shape[2:]):
            raise InvalidInputError(f"labels of shape {labels.shape} do not match {what} of shape {values.shape} "
                                    "(expected (B, H, W) for (B, C, H, W))")
        values = np.moveaxis(values, 1, -1).reshape(-1, values.shape[1])
        labels = labels.reshape(-1)
    elif values.ndim == 2:
        if labels.shape != (values.shape[0],):
            raise InvalidInputError(f"labels of shape {labels.shape} do not match {what} of shape {values.shape} "
                                    "(expected (N,) for (N, C))")
    else:
        raise InvalidInputError(f"{what} must be (N, C) or (B, C, H, W), got shape {values.shape}")
    keep = labels != ignore if ignore is not None else np.ones(labels.shape, dtype=bool)
    labels = labels[keep].astype(np.int64)
    classes = values.shape[1]
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        bad = sorted(set(np.unique(labels[(labels < 0) | (labels >= classes)]).tolist()))
        raise InvalidInputError(f"labels {bad} are not classes 0..{classes - 1} nor the ignore value {ignore}")
    if labels.size == 0:
        raise InvalidInputError(f"no labelled pixel to calibrate on: every label is the ignore value {ignore}")
    return values[keep].astype(np.float64), labels


def _nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of softmax(logits / T)."""
    scaled = logits / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    log_z = np.log(np.exp(scaled).sum(axis=1))
    return float(np.mean(log_z - scaled[np.arange(labels.size), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, ignore: int | None = 255) -> float:
    """The temperature in [0.05, 20] that minimises the NLL of the labelled pixels; deterministic.

    The NLL of softmax(beta * logits) is convex in beta = 1 / T, so a golden-section search over log T finds the
    optimum of the interval (to ~1e-9 relative); an optimum at an end means the data want a more extreme value.

    Args:
        logits: raw (uncalibrated) logits, (N, C) or (B, C, H, W).
        labels: class values, (N,) or (B, H, W); `ignore` marks unlabelled pixels.

    Raises:
        InvalidInputError: shapes disagree, labels outside 0..C-1, or no labelled pixel.
    """
    flat, truth = _flatten(logits, labels, ignore, "logits")
    if not np.isfinite(flat).all():
        raise InvalidInputError("logits hold NaN or infinite values; cannot fit a temperature")
    low, high = math.log(T_MIN), math.log(T_MAX)
    a = high - _GOLDEN * (high - low)
    b = low + _GOLDEN * (high - low)
    fa, fb = _nll(flat, truth, math.exp(a)), _nll(flat, truth, math.exp(b))
    for _ in range(_ITERATIONS):
        if fa <= fb:
            high, b, fb = b, a, fa
            a = high - _GOLDEN * (high - low)
            fa = _nll(flat, truth, math.exp(a))
        else:
            low, a, fa = a, b, fb
            b = low + _GOLDEN * (high - low)
            fb = _nll(flat, truth, math.exp(b))
    return float(math.exp((low + high) / 2.0))


def softmax(logits: np.ndarray, temperature: float = 1.0, axis: int = 1, *, inplace: bool = False) -> np.ndarray:
    """Probabilities softmax(logits / T) along `axis` (classes), float32, numerically stable (max subtracted).

    The one softmax: calibration, the predictors' `probabilities` and the blended tiles of inference use it.
    `inplace`: `logits` (float32) is overwritten and returned, one array less (inference's large blocks).
    """
    scaled = logits if inplace and logits.dtype == np.float32 else np.array(logits, dtype=np.float32)
    if temperature != 1.0:
        scaled /= np.float32(temperature)
    scaled -= scaled.max(axis=axis, keepdims=True)
    np.exp(scaled, out=scaled)
    scaled /= scaled.sum(axis=axis, keepdims=True)
    return scaled


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, ignore: int | None = 255,
                               bins: int = 15) -> float:
    """Top-label ECE: sum over equal-width confidence bins of |accuracy - mean confidence| weighted by pixel share.

    Args:
        probs: class probabilities, (N, C) or (B, C, H, W).
        labels: class values, (N,) or (B, H, W); `ignore` marks unlabelled pixels.
        bins: number of equal-width bins on [0, 1].
    """
    if bins < 1:
        raise InvalidInputError(f"bins must be at least 1, got {bins}")
    flat, truth = _flatten(probs, labels, ignore, "probabilities")
    confidence = flat.max(axis=1)
    correct = flat.argmax(axis=1) == truth
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)  # (lo, hi] bins, 0 in the first
    conf_sum = np.bincount(index, weights=confidence, minlength=bins)
    correct_sum = np.bincount(index, weights=correct.astype(np.float64), minlength=bins)
    return float(np.abs(correct_sum - conf_sum).sum() / truth.size)


def calibrate(logits: np.ndarray, labels: np.ndarray, *, ignore: int | None = 255, fitted_on: str = "",
              bins: int = 15) -> Calibration:
    """Fit the temperature on labelled pixels and measure the ECE before (T = 1) and after, for the card."""
    temperature = fit_temperature(logits, labels, ignore)
    _, truth = _flatten(logits, labels, ignore, "logits")
    return Calibration(
        temperature=temperature,
        ece_before=expected_calibration_error(softmax(logits), labels, ignore, bins),
        ece_after=expected_calibration_error(softmax(logits, temperature), labels, ignore, bins),
        fitted_on=fitted_on,
        pixels=int(truth.size),
        bins=bins,
    )
