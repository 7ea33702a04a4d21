"""Non-deep baselines on the same bands and split: a per-pixel random forest and the majority class."""

from __future__ import annotations

import numpy as np

from geovigie.training._targets import IGNORE


def training_pixels(images: list[np.ndarray], labels: list[np.ndarray], masks: list[np.ndarray], max_pixels: int,
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Band values (N, bands) and classes (N,) of labelled training pixels, a seeded subsample of `max_pixels`."""
    xs, ys = [], []
    for image, lab, mask in zip(images, labels, masks, strict=True):
        keep = mask & (lab != IGNORE)
        xs.append(image[:, keep].T)
        ys.append(lab[keep])
    x, y = np.concatenate(xs), np.concatenate(ys)
    if len(y) > max_pixels:
        pick = np.random.default_rng(seed).choice(len(y), size=max_pixels, replace=False)
        x, y = x[pick], y[pick]
    return x.astype(np.float32), y.astype(np.int64)


class RandomForestBaseline:
    """scikit-learn RandomForestClassifier on raw band values of each pixel (no context, no normalisation)."""

    def __init__(self, trees: int, seed: int, jobs: int = 2) -> None:
        from sklearn.ensemble import RandomForestClassifier

        self.model = RandomForestClassifier(n_estimators=trees, random_state=seed, n_jobs=jobs)

    def fit(self, x: np.ndarray, y: np.ndarray) -> RandomForestBaseline:
        """Fit on (N, bands) values and (N,) classes."""
        self.model.fit(x, y)
        return self

    def predict_scene(self, image: np.ndarray) -> np.ndarray:
        """Class map (H, W) of a raw scene (bands, H, W)."""
        bands, height, width = image.shape
        pred = self.model.predict(image.reshape(bands, -1).T)
        return pred.reshape(height, width).astype(np.uint8)


def majority_class(y: np.ndarray) -> int:
    """The most frequent class of the training pixels."""
    return int(np.bincount(y).argmax())
