"""Per-scene input normalisation: a per-band mapping of raw values computed once over the whole input raster (never
per tile), applied before the card's normalisation, identically in training and in `predict`.

Methods (card field `scene_normalisation`):
- `median-mad`: `(x - median) / (1.4826 * MAD)` per band (robust standardisation);
- `percentiles`: `(x - p_low) / (p_high - p_low)` per band (robust min-max, default 2nd / 98th percentiles);
- `histogram-match`: the scene's quantiles mapped onto reference quantiles stored in the card (piecewise linear);
- `dark-object`: `x - p1` per band (dark-object subtraction: the darkest 1 % of the scene taken as the additive
  path radiance of haze, Chavez 1988).

A mapping is a list, per band, of knots (source values -> target values), piecewise linear between knots and
extended linearly beyond the end ones: two knots for the standardisations, one per quantile level for matching.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

MAD_TO_STD = 1.4826
"""MAD of a normal distribution times this is its standard deviation."""
MAX_STAT_PIXELS = 1_048_576
"""Scene statistics read at most this many pixels (a regular subsample of larger rasters: 109 MB of float64 for 13
bands)."""
DEFAULT_LEVELS = [float(q) for q in range(0, 101)]
DARK_OBJECT_PERCENTILE = 1.0
"""Dark-object subtraction takes this percentile of each band as the haze's additive offset."""

Method = Literal["median-mad", "percentiles", "histogram-match", "dark-object"]
BandMaps = tuple[tuple[tuple[float, ...], tuple[float, ...]], ...]
"""Per band: (source knots, target knots), both increasing."""


class SceneNormalisation(BaseModel):
    """How each input raster is mapped, band by band, before the card's normalisation (whole-raster statistics)."""

    method: Method
    percentiles: tuple[float, float] = Field(default=(2.0, 98.0), description="percentiles method: mapped to 0 and 1.")
    levels: list[float] = Field(default_factory=list, description="histogram-match: quantile levels (percent).")
    reference: list[list[float]] = Field(
        default_factory=list, description="histogram-match: per band, the reference's quantiles at `levels` (the "
        "training scenes' pooled pixels).")
    raw_centre: list[float] = Field(
        default_factory=list, description="Per band, the median raw value of the training pixels (what inputs look "
        "like before the mapping: input checks advise a rescaling from it). Empty: unknown.")

    @model_validator(mode="after")
    def _complete(self) -> SceneNormalisation:
        low, high = self.percentiles
        if not 0 <= low < high <= 100:
            raise ValueError(f"percentiles need 0 <= low < high <= 100, got {self.percentiles}")
        if self.method == "histogram-match":
            if len(self.levels) < 2 or any(b <= a for a, b in zip(self.levels, self.levels[1:], strict=False)):
                raise ValueError("histogram-match needs at least 2 increasing quantile levels")
            if not self.reference or any(len(r) != len(self.levels) for r in self.reference):
                raise ValueError("histogram-match needs, per band, one reference quantile per level")
        return self

    def describe(self) -> str:
        """The mapping, in words."""
        if self.method == "median-mad":
            return "per band (x - median) / (1.4826 MAD) over the whole input raster"
        if self.method == "percentiles":
            low, high = self.percentiles
            return f"per band (x - p{low:g}) / (p{high:g} - p{low:g}) over the whole input raster"
        if self.method == "dark-object":
            return f"per band x - p{DARK_OBJECT_PERCENTILE:g} over the whole input raster (dark-object subtraction)"
        return (f"per band histogram matching of the whole input raster onto the reference's quantiles "
                f"({len(self.levels)} levels)")


def stat_pixels(image: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Values (bands, pixels) of the valid pixels of a (bands, H, W) image, float64."""
    flat = image.reshape(image.shape[0], -1)
    if valid is not None:
        flat = flat[:, valid.reshape(-1)]
    return flat.astype(np.float64)


def reference_of(images: list[np.ndarray], method: str, levels: list[float] | None = None,
                 raw_centre: list[float] | None = None) -> SceneNormalisation:
    """A scene normalisation of `method`; for histogram matching, its reference is the pooled quantiles of `images`
    (the training scenes). `raw_centre`: the training pixels' per-band medians, recorded as they are."""
    centre = list(raw_centre or [])
    if method != "histogram-match":
        return SceneNormalisation.model_validate({"method": method, "raw_centre": centre})
    levels = levels or DEFAULT_LEVELS
    pixels = np.concatenate([stat_pixels(img) for img in images], axis=1)
    reference = np.percentile(pixels, levels, axis=1).T
    return SceneNormalisation(method="histogram-match", levels=levels, reference=reference.tolist(),
                              raw_centre=centre)


def _increasing(source: np.ndarray, target: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Knots with strictly increasing sources (ties, e.g. saturated values, keep the middle target)."""
    keep_src, keep_dst = [], []
    for value in np.unique(source):
        keep_src.append(float(value))
        keep_dst.append(float(np.median(target[source == value])))
    if len(keep_src) == 1:  # a constant band: shift it to the target's centre
        keep_src, keep_dst = [keep_src[0], keep_src[0] + 1.0], [keep_dst[0], keep_dst[0] + 1.0]
    return tuple(keep_src), tuple(np.maximum.accumulate(keep_dst).tolist())


def band_maps(pixels: np.ndarray, spec: SceneNormalisation) -> BandMaps:
    """The mapping of one scene from its valid pixels' values (bands, pixels).

    Raises:
        ValueError: no pixel, or a band count other than the reference's.
    """
    if pixels.shape[1] == 0:
        raise ValueError("no valid pixel to compute scene statistics from")
    out: list[tuple[tuple[float, ...], tuple[float, ...]]] = []
    if spec.method == "histogram-match" and len(spec.reference) != pixels.shape[0]:
        raise ValueError(f"the scene has {pixels.shape[0]} bands, the reference {len(spec.reference)}")
    for band, values in enumerate(pixels):
        if spec.method == "median-mad":
            median = float(np.median(values))
            spread = MAD_TO_STD * float(np.median(np.abs(values - median)))
            if spread <= 1e-12:  # more than half the pixels equal: fall back on the standard deviation, then 1
                spread = float(values.std()) or 1.0
            out.append(((median, median + spread), (0.0, 1.0)))
        elif spec.method == "dark-object":
            dark = float(np.percentile(values, DARK_OBJECT_PERCENTILE))
            out.append(((dark, dark + 1.0), (0.0, 1.0)))
        elif spec.method == "percentiles":
            low, high = (float(v) for v in np.percentile(values, spec.percentiles))
            if high - low <= 1e-12:
                high = low + 1.0
            out.append(((low, high), (0.0, 1.0)))
        else:
            source = np.percentile(values, spec.levels)
            out.append(_increasing(source, np.asarray(spec.reference[band], np.float64)))
    return tuple(out)


def apply_band_maps(image: np.ndarray, maps: BandMaps) -> np.ndarray:
    """(bands, H, W) float32: each band through its piecewise linear mapping (linear beyond the end knots)."""
    out = np.empty(image.shape, np.float32)
    for band, (source, target) in enumerate(maps):
        xs, ys = np.asarray(source, np.float64), np.asarray(target, np.float64)
        values = image[band].astype(np.float64)
        mapped = np.interp(values, xs, ys)
        low_slope = (ys[1] - ys[0]) / (xs[1] - xs[0])
        high_slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
        below, above = values < xs[0], values > xs[-1]
        mapped[below] = ys[0] + (values[below] - xs[0]) * low_slope
        mapped[above] = ys[-1] + (values[above] - xs[-1]) * high_slope
        out[band] = mapped
    return out


def normalise_scene(image: np.ndarray, spec: SceneNormalisation | None,
                    valid: np.ndarray | None = None) -> np.ndarray:
    """A whole (bands, H, W) scene mapped with statistics of its own valid pixels (unchanged, float32, when `spec`
    is None)."""
    if spec is None:
        return np.asarray(image, np.float32)
    return apply_band_maps(image, band_maps(stat_pixels(image, valid), spec))
