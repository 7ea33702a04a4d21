"""Per-pixel candidates: scikit-learn random forest or histogram gradient boosting on bands, indices and (optionally)
their 3 x 3 mean, exported to ONNX as a pixel-classifier bundle (`geovigie.models.wrap_pixel_model`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

import numpy as np

from geovigie.bands import S2_BANDS, canonical_s2_name
from geovigie.models import (
    Normalisation,
    NormalisedDifference,
    PixelFeatures,
    SceneNormalisation,
    feature_count,
    normalise_scene,
    pixel_features,
    reference_of,
    wrap_pixel_model,
)
from geovigie.training._config import Candidate, ConfigError
from geovigie.training._targets import IGNORE

SENTINEL2_INDICES = {"ndvi": ("B08", "B04"), "ndwi": ("B03", "B08"), "ndbi": ("B11", "B08")}
"""Normalised differences (a - b) / (a + b): vegetation (NDVI), water (McFeeters NDWI), built-up (NDBI)."""
COMMON_NAMES = {name: tuple(str(S2_BANDS[b][0]) for b in pair) for name, pair in SENTINEL2_INDICES.items()}
"""The same indices by STAC common name (nir, red, green, swir16), for other sensors."""


PASS_SUFFIXES = ("", "_previous")
"""Feature names of each pass of a multi-date input: the target's as they are, the previous pass's suffixed."""


def resolve_indices(names: list[str], bands: list[str], common: list[str] | None = None,
                    dates: int = 1) -> list[NormalisedDifference]:
    """The named indices as channel positions of `bands` (Sentinel-2 names, any spelling), or of `common` (the STAC
    common name of each band, e.g. Landsat's blue, green, red, nir, swir16, swir22) when given, for each of `dates`
    passes stacked (the previous pass's bands follow the target's).

    Raises:
        ConfigError: an unknown index, or one whose bands the images lack.
    """
    common = common or None
    if common is not None and len(common) != len(bands):
        raise ConfigError(f"images.common_names has {len(common)} names for {len(bands)} bands {bands}")
    canon = [canonical_s2_name(b) for b in bands] if common is None else list(common)
    table = SENTINEL2_INDICES if common is None else COMMON_NAMES
    out = []
    for name in names:
        if name not in table:
            raise ConfigError(f"unknown index {name!r}: use one of {sorted(table)}")
        a, b = table[name]
        if a not in canon or b not in canon:
            raise ConfigError(f"index {name!r} needs bands {a} and {b}; the images have {canon}")
        for k in range(dates):
            shift = k * len(bands)
            out.append(NormalisedDifference(name=name + PASS_SUFFIXES[k], a=canon.index(a) + shift,
                                            b=canon.index(b) + shift))
    return out


def resolve_channels(names: list[str] | None, bands: list[str], dates: int = 1) -> list[int] | None:
    """The channel positions of the bands `names` in each of `dates` stacked passes (None: every channel).

    Raises:
        ConfigError: a band the images lack.
    """
    if names is None:
        return None
    canon = [canonical_s2_name(b) for b in bands]
    unknown = [n for n in names if canonical_s2_name(n) not in canon]
    if unknown:
        raise ConfigError(f"candidate bands {unknown} are not among the images' bands {bands}")
    return [canon.index(canonical_s2_name(n)) + k * len(bands) for k in range(dates) for n in names]


def scene_normalisation(method: str, images: list[np.ndarray], masks: list[np.ndarray]) -> SceneNormalisation | None:
    """The per-scene normalisation `method` of a candidate (None for "none"); a histogram-matching reference is
    pooled from the whole images that have training pixels under `masks` (never from a held-out date); the raw
    per-band medians of the training pixels are recorded beside it."""
    if method == "none":
        return None
    pixels = np.concatenate([img[:, m] for img, m in zip(images, masks, strict=True)], axis=1).astype(np.float64)
    centre = np.median(pixels, axis=1).tolist()
    return reference_of([img for img, m in zip(images, masks, strict=True) if m.any()], method, raw_centre=centre)


@contextlib.contextmanager
def _boolean_missing_flags_as_ints() -> Iterator[None]:
    """skl2onnx 1.20 passes a Python bool as a leaf's missing-value flag of HistGradientBoosting trees, which onnx
    refuses in an int list; cast it while converting."""
    from skl2onnx.common import tree_ensemble

    original = tree_ensemble.add_node

    def add_node(*args: Any, **kwargs: Any) -> Any:
        if "nodes_missing_value_tracks_true" in kwargs:
            kwargs["nodes_missing_value_tracks_true"] = int(kwargs["nodes_missing_value_tracks_true"])
        return original(*args, **kwargs)

    with mock.patch.object(tree_ensemble, "add_node", add_node):
        yield


class PixelCandidate:
    """A per-pixel classifier candidate: fit on the features of labelled training pixels, predict whole scenes."""

    def __init__(self, spec: Candidate, bands: list[str], num_classes: int, seed: int,
                 common: list[str] | None = None) -> None:
        self.spec, self.num_classes, self.seed = spec, num_classes, seed
        self.bands = len(bands) * spec.dates  # input channels
        self.features = PixelFeatures(indices=resolve_indices(spec.indices, bands, common, spec.dates),
                                      channels=resolve_channels(spec.bands, bands, spec.dates),
                                      neighbourhood=spec.neighbourhood, estimator=self.describe())
        self.model = self._estimator()
        self.scene: SceneNormalisation | None = None
        self.training_pixels = 0

    def describe(self) -> str:
        """The estimator and its settings, in words."""
        s = self.spec
        depth = f", max_depth={s.max_depth}" if s.max_depth else ""
        scene = f" on {s.scene} scene-normalised inputs" if s.scene != "none" else ""
        scene += f" of bands {s.bands} and indices" if s.bands is not None else ""
        scene += " of 2 passes (target, then the previous pass)" if s.dates == 2 else ""
        if s.kind == "random-forest":
            return (f"scikit-learn RandomForestClassifier(n_estimators={s.trees}{depth}, "
                    f"min_samples_leaf={s.min_samples_leaf}){scene}")
        return (f"scikit-learn HistGradientBoostingClassifier(max_iter={s.trees}{depth}, "
                f"learning_rate={s.learning_rate}, min_samples_leaf={max(s.min_samples_leaf, 20)}){scene}")

    def _estimator(self):  # noqa: ANN202
        from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

        s = self.spec
        if s.kind == "random-forest":
            return RandomForestClassifier(n_estimators=s.trees, max_depth=s.max_depth,
                                          min_samples_leaf=s.min_samples_leaf, random_state=self.seed, n_jobs=2)
        return HistGradientBoostingClassifier(max_iter=s.trees, max_depth=s.max_depth, learning_rate=s.learning_rate,
                                              min_samples_leaf=max(s.min_samples_leaf, 20), early_stopping=False,
                                              random_state=self.seed)

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """A raw scene as the classifier's features see it: mapped by its own whole-scene statistics (`scene`)."""
        return normalise_scene(image, self.scene)

    def scene_features(self, image: np.ndarray) -> np.ndarray:
        """Features (F, H, W) of a raw scene (scene normalisation first)."""
        return pixel_features(self.prepare(image), self.features)

    def fit(self, images: list[np.ndarray], labels: list[np.ndarray], masks: list[np.ndarray]) -> PixelCandidate:
        """Fit on the labelled pixels under `masks` (a seeded subsample of `max_pixels`), after the candidate's scene
        normalisation (its reference, if any, from the images with training pixels)."""
        self.scene = scene_normalisation(self.spec.scene, images, masks)
        xs, ys = [], []
        for image, lab, mask in zip(images, labels, masks, strict=True):
            keep = mask & (lab != IGNORE)
            if keep.any():
                xs.append(self.scene_features(image)[:, keep].T)
                ys.append(lab[keep].astype(np.int64))
        x, y = np.concatenate(xs), np.concatenate(ys)
        if len(y) > self.spec.max_pixels:
            pick = np.random.default_rng(self.seed).choice(len(y), size=self.spec.max_pixels, replace=False)
            x, y = x[pick], y[pick]
        self.model.fit(x, y)
        self.training_pixels = len(y)
        return self

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """Class probabilities (classes, H, W) of a raw scene (classes never seen in training: 0)."""
        features = self.scene_features(image)
        _, height, width = features.shape
        table = self.model.predict_proba(features.reshape(features.shape[0], -1).T)
        out = np.zeros((self.num_classes, height * width), dtype=np.float32)
        out[self.model.classes_.astype(np.int64)] = table.T
        return out.reshape(self.num_classes, height, width)

    def logits(self, image: np.ndarray) -> np.ndarray:
        """What the bundle's ONNX model returns: log of the floored probabilities (classes, H, W)."""
        from geovigie.models import PROBABILITY_FLOOR

        return np.log(np.maximum(self.probabilities(image), np.float32(PROBABILITY_FLOOR)))

    def to_onnx(self, norm: Normalisation | None = None):  # noqa: ANN201
        """The bundle's ONNX model (skl2onnx for the estimator, wrapped to take and give (N, C, H, W)); it takes
        batches normalised with `norm` (None: raw values), after the scene normalisation (`self.scene`, which the
        card records and `predict` applies over the whole raster)."""
        from skl2onnx import to_onnx

        features = feature_count(self.bands, self.features)
        example = np.zeros((1, features), dtype=np.float32)
        with _boolean_missing_flags_as_ints():
            table = to_onnx(self.model, example, options={id(self.model): {"zipmap": False}},
                            target_opset={"": 17, "ai.onnx.ml": 3})
        return wrap_pixel_model(table, self.bands, self.features, self.num_classes,
                                columns=self.model.classes_.astype(int).tolist(), norm=norm)
