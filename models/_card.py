"""The model card stored beside the weights of a bundle."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from geovigie.classes import ClassInfo
from geovigie.models._scene import SceneNormalisation

CARD_FORMAT_VERSION: Literal["2"] = "2"
"""Written by `save_bundle`. Version 1 cards (no `format_version`) still load; read as "1"."""


class Architecture(BaseModel):
    """How to rebuild the network with segmentation-models-pytorch."""

    name: str = "Unet"
    encoder: str = "tu-mobilenetv2_050"
    encoder_depth: int = 5
    decoder_channels: list[int] = Field(default_factory=lambda: [128, 64, 32, 16, 16])
    extra: dict[str, Any] = Field(default_factory=dict)


class Normalisation(BaseModel):
    """Per-band statistics applied as (x * scale - mean) / std before the forward pass."""

    scale: float = 1.0
    mean: list[float]
    std: list[float]


class Calibration(BaseModel):
    """Temperature scaling: calibrated probabilities are softmax(logits / temperature); argmax is unchanged."""

    method: Literal["temperature"] = "temperature"
    temperature: float = Field(gt=0, description="Divides the logits before the softmax; 1 changes nothing.")
    ece_before: float | None = Field(None, ge=0, le=1, description="Expected calibration error with T = 1.")
    ece_after: float | None = Field(None, ge=0, le=1, description="Expected calibration error with the fitted T.")
    fitted_on: str = Field("", description="The labelled pixels T was fitted on (e.g. validation blocks of ...).")
    pixels: int | None = Field(None, ge=0, description="How many labelled pixels were used.")
    bins: int = Field(15, ge=1, description="Equal-width confidence bins of the ECE.")


class OnnxExport(BaseModel):
    """The ONNX copy of the network stored in the bundle (see `export_onnx`)."""

    file: str = Field("model.onnx", pattern=r"^[^/\\]+\.onnx$", description="A file name inside the bundle.")
    opset: int = Field(ge=7)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    weights_sha256: str = Field("", description="SHA-256 of the weights it was exported from: a copy of other "
                                "weights is stale and refused.")


class NormalisedDifference(BaseModel):
    """A spectral index `(band a - band b) / (band a + band b)` of two input bands (0-based positions)."""

    name: str = Field(description="ndvi, ndwi, ndbi... or any name.")
    a: int = Field(ge=0)
    b: int = Field(ge=0)


class PixelFeatures(BaseModel):
    """What a per-pixel classifier sees at each pixel (bundles of kind `pixel-classifier`, see `models/_pixel.py`):
    the raw band values (`channels` of them), then its indices, then (`neighbourhood` = 3) the 3 x 3 mean of all of
    those."""

    indices: list[NormalisedDifference] = Field(default_factory=list)
    channels: list[int] | None = Field(default=None, description="Input channels (0-based) the classifier sees as "
                                       "values besides its indices; None: all of them, []: none (indices only).")
    neighbourhood: Literal[0, 3] = 0
    estimator: str = Field("", description="The fitted estimator, in words (library, class, main settings).")


class ModelCard(BaseModel):
    """Everything needed to use a model correctly and to know what it is worth.

    Format 2 adds `config`, `label_mapping`, `calibration` and `onnx` to format 1, all optional.
    """

    format_version: Literal["1", "2"] = Field(
        default=CARD_FORMAT_VERSION, description="Card format; cards written before format 2 have none and load as 1.")
    name: str
    version: str
    task: str = "semantic-segmentation"
    kind: Literal["network", "pixel-classifier"] = Field(
        default="network", description="network: smp weights (+ ONNX copy); pixel-classifier: a per-pixel "
        "scikit-learn model whose only weights are `model.onnx` (`weights_sha256` is that file's hash).")
    architecture: Architecture | None = Field(default=None, description="The network (kind network only).")
    pixel: PixelFeatures | None = Field(default=None, description="The features (kind pixel-classifier only).")
    bands: list[str]
    dates: int = Field(default=1, ge=1, le=2, description="Passes of the same place the model takes: 1, or 2 = the "
                       "target pass's `bands` then the same bands of the previous pass (acquired earlier), stacked "
                       "as input channels; each pass gets its own scene normalisation.")
    product_level: str = Field(description="Imagery processing level the model was trained on: L1C, L2A...")
    normalisation: Normalisation
    scene_normalisation: SceneNormalisation | None = Field(
        default=None, description="Per-band mapping of the raw values computed over the whole input raster once "
        "(before tiling) and applied before `normalisation`, in training and in predict alike; None: raw values.")
    input_range: tuple[float, float] | list[tuple[float, float]] | None = Field(
        default=None,
        description="Raw band values the model expects, before normalisation: one [low, high] for every band or one "
        "per band. Inputs clearly outside are refused unless forced. None: not checked (v1 cards).")
    input_dtype: Literal["float", "int"] | None = Field(
        default=None,
        description="Dtype family of the raw values: float (e.g. reflectance) or int (e.g. digital numbers).")
    input_units: str = Field(default="", description="What the raw values are, in words, for error messages.")
    pixel_size_m: float
    classes: list[ClassInfo]
    ignore_value: int | None = Field(None, description="Label value ignored in training (no data).")
    provenance: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    limitations: str = ""
    weights_sha256: str = ""
    config: dict[str, Any] = Field(default_factory=dict, description="The experiment config the model was trained "
                                   "with, as given (format 2).")
    label_mapping: dict[str, int] = Field(
        default_factory=dict,
        description="Source nomenclature value or name (as a string) -> class value of the model, or "
        "`ignore_value` for source labels that are ignored (format 2).")
    calibration: Calibration | None = None
    onnx: OnnxExport | None = None

    @field_validator("classes")
    @classmethod
    def _contiguous(cls, classes: list[ClassInfo]) -> list[ClassInfo]:
        values = [c.value for c in classes]
        if values != list(range(len(values))):
            raise ValueError(f"class values must be 0..{len(values) - 1} in order, got {values}")
        return classes

    def model_post_init(self, __context: Any) -> None:
        n, channels = len(self.bands), self.channels
        if self.kind == "network" and self.architecture is None:
            raise ValueError("a network card needs its architecture")
        if self.kind == "pixel-classifier":
            if self.pixel is None:
                raise ValueError("a pixel-classifier card needs `pixel` (its features)")
            bad = [i.name for i in self.pixel.indices if max(i.a, i.b) >= channels]
            bad += [f"channel {c}" for c in self.pixel.channels or [] if not 0 <= c < channels]
            if bad:
                raise ValueError(f"indices {bad} name channels beyond the card's {channels}")
        scene = self.scene_normalisation
        if scene is not None and scene.method == "histogram-match" and len(scene.reference) != channels:
            raise ValueError(f"scene_normalisation needs one reference per input channel ({channels})")
        if len(self.normalisation.mean) != channels or len(self.normalisation.std) != channels:
            raise ValueError(f"normalisation needs one mean and one std per input channel ({channels})")
        ranges = self.band_ranges()
        if ranges is not None:
            if len(ranges) != n:
                raise ValueError(f"input_range needs one [low, high] for all bands or one per band ({n} bands)")
            if any(not low < high for low, high in ranges):
                raise ValueError(f"input_range needs low < high: {self.input_range}")
        allowed = set(range(self.num_classes)) | ({self.ignore_value} if self.ignore_value is not None else set())
        unknown = {source: value for source, value in self.label_mapping.items() if value not in allowed}
        if unknown:
            raise ValueError(f"label_mapping maps {unknown} to values that are neither a class "
                             f"(0..{self.num_classes - 1}) nor the ignore value ({self.ignore_value})")

    def band_ranges(self) -> list[tuple[float, float]] | None:
        """The expected [low, high] of each band's raw values, or None when the card does not say."""
        if self.input_range is None:
            return None
        if isinstance(self.input_range, tuple):
            return [self.input_range] * len(self.bands)
        return list(self.input_range)

    @property
    def channels(self) -> int:
        """Input channels of the model: the bands of every pass."""
        return len(self.bands) * self.dates

    def describe_dates(self) -> str:
        """The inputs the model takes, in words."""
        if self.dates == 1:
            return "one pass (its bands)"
        return ("2 passes: the target pass, then the previous pass of the same place (acquired earlier) on the same "
                "grid, each with its own scene normalisation")

    @property
    def temperature(self) -> float:
        """The calibration temperature, 1.0 when the card has none."""
        return self.calibration.temperature if self.calibration is not None else 1.0

    @property
    def num_classes(self) -> int:
        """Number of output classes."""
        return len(self.classes)
