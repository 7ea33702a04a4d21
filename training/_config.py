"""One experiment, one TOML file: imagery, labels, class mapping, split, model, optimisation, output bundle.

Relative paths are read from the folder of the config file. Unknown keys are an error naming the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from geovigie.config_file import read_toml, validate
from geovigie.errors import InvalidInputError
from geovigie.models import Architecture

ALL_FOLDS = "all"
"""`split.holdout` value that holds out every date (or area) in turn."""


class ConfigError(InvalidInputError):
    """An experiment config is unreadable, has unknown keys or inconsistent values."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageFile(_Strict):
    """One image: a multi-band raster (`path`) or single-band rasters stacked in order (`paths`)."""

    path: str | None = None
    paths: list[str] | None = None
    date: str = Field(default="", description="Acquisition date or any date label (leave-one-date-out groups by it).")
    area: str = Field(default="", description="Area name (leave-one-area-out groups by it).")
    acquired: str = Field(default="", description="Acquisition date and time (ISO 8601): orders the passes of an "
                          "area for multi-date candidates (`dates = 2`); empty: unknown.")
    labels: str | None = Field(default=None, description="Label file of this image only (overrides labels.path).")

    @model_validator(mode="after")
    def _one_source(self) -> ImageFile:
        if (self.path is None) == (self.paths is None):
            raise ValueError("give either path (one multi-band raster) or paths (single-band rasters), not both")
        return self

    @property
    def files(self) -> list[str]:
        """The raster files of this image, in band order."""
        return [self.path] if self.path is not None else list(self.paths or [])


class StacImages(_Strict):
    """Images as items of a STAC catalog (a local catalog.json or an API URL)."""

    catalog: str
    collection: str
    ids: list[str]
    asset: str = "data"
    label_asset: str | None = Field(default=None, description="Item asset holding the labels (a STAC label raster).")
    area: str = ""


class Images(_Strict):
    """The imagery: raster files or STAC items, all with the same bands."""

    files: list[ImageFile] = Field(default_factory=list)
    stac: StacImages | None = None
    bands: list[str] | None = Field(default=None, description="Band names (default: the raster's band descriptions).")
    product_level: str = "unknown"
    input_units: str = ""
    input_range: tuple[float, float] | None = None
    normalisation: Literal["global", "robust"] = "global"
    common_names: list[str] = Field(default_factory=list, description="STAC common name of each band (blue, green, "
                                    "red, nir, swir16, swir22...) for the indices of pixel candidates; empty: from "
                                    "Sentinel-2 band names.")

    @model_validator(mode="after")
    def _some(self) -> Images:
        if not self.files and self.stac is None:
            raise ValueError("no imagery: give images.files or images.stac")
        if self.common_names and self.bands is not None and len(self.common_names) != len(self.bands):
            raise ValueError(f"images.common_names has {len(self.common_names)} names for {len(self.bands)} bands "
                             f"{self.bands}")
        return self


class Labels(_Strict):
    """Where the labels come from and how unlabelled pixels count."""

    source: Literal["raster", "vector", "field-validation"] = "raster"
    path: str | None = None
    band: int = 1
    layer: str | None = None
    attribute: str | None = Field(default=None, description="Class attribute of vector labels.")
    point_radius_m: float = Field(default=10.0, gt=0)
    ignore_values: list[int | str] = Field(default_factory=list, description="Source values read as no label.")
    unlabelled: str = Field(default="ignore", description="Pixels no label covers: 'ignore' or a class name.")
    buffer_m: float = Field(default=0.0, description="Field-validation records: each site grown (> 0) or shrunk "
                            "(< 0) by this many metres before rasterising (points are disks of point_radius_m first).")
    min_records: int = Field(default=5, ge=1, description="Field-validation records: fewest records per class (each "
                             "site's latest) to train on; fewer is an error.")


class ClassSpec(_Strict):
    """One model class and the source values or names that map to it."""

    name: str
    color: str = Field(default="#808080", pattern=r"^#[0-9a-fA-F]{6}$")
    sources: list[int | str]
    description: str = ""


class Split(_Strict):
    """Spatial blocks (train / val / test, buffered) and optional held-out dates, areas or spatial folds."""

    mode: Literal["blocks", "leave-one-date-out", "leave-one-area-out", "spatial-folds"] = "blocks"
    block_px: int = Field(default=32, ge=4)
    buffer_px: int = Field(default=2, ge=0)
    val_fraction: float = Field(default=0.2, ge=0, lt=1)
    test_fraction: float = Field(default=0.2, ge=0, lt=1)
    seed: int = 0
    holdout: str | None = Field(default=None, description="Date or area held out (leave-one-*-out modes), or fold "
                                "number (spatial-folds); 'all': every one in turn (one fold each), then the bundle is "
                                "trained on all of them.")
    fold_epochs: int | None = Field(default=None, ge=1, description="Epochs of each fold when holdout = 'all' "
                                    "(default: train.epochs); the final model trains train.epochs.")
    folds: int = Field(default=5, ge=2, description="spatial-folds: number of folds; whole labelled polygons, grouped "
                       "by the block_px block holding their centre, are dealt to them (one date: space held out).")

    @model_validator(mode="after")
    def _fractions(self) -> Split:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must stay below 1 (no block left to train on)")
        if self.mode != "blocks" and not self.holdout:
            raise ValueError(f"split.mode = {self.mode!r} needs split.holdout (the date or area to hold out, or "
                             "'all' to rotate)")
        if self.mode == "blocks" and self.holdout:
            raise ValueError("split.holdout needs split.mode = 'leave-one-date-out', 'leave-one-area-out' or "
                             "'spatial-folds'")
        if self.mode == "spatial-folds" and self.holdout not in [ALL_FOLDS, *map(str, range(1, self.folds + 1))]:
            raise ValueError(f"split.mode = 'spatial-folds' needs split.holdout = 'all' or a fold number from 1 to "
                             f"{self.folds} (split.folds), not {self.holdout!r}")
        return self

    @property
    def rotates(self) -> bool:
        """Whether every date (or area) is held out in turn."""
        return self.mode != "blocks" and self.holdout == ALL_FOLDS


class Augment(_Strict):
    """Geometric and radiometric augmentation, so that a new date is not a new world."""

    flips: bool = True
    rot90: bool = True
    gain: float = Field(default=0.1, ge=0, lt=1, description="Per-band gain drawn in [1 - gain, 1 + gain].")
    offset: float = Field(default=0.1, ge=0, description="Per-band offset drawn in ±offset band standard deviations.")
    haze: float = Field(default=0.2, ge=0, lt=1, description="Haze weight drawn in [0, haze].")
    probability: float = Field(default=0.8, ge=0, le=1, description="Share of chips that get radiometric jitter.")


class Optimisation(_Strict):
    """Loop settings."""

    epochs: int = Field(default=5, ge=1)
    steps_per_epoch: int = Field(default=20, ge=1)
    batch_size: int = Field(default=8, ge=1)
    chip_size: int = Field(default=64, ge=32)
    lr: float = Field(default=3e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    loss: Literal["ce", "ce+dice", "focal"] = "ce+dice"
    focal_gamma: float = Field(default=2.0, ge=0)
    class_weights: Literal["auto", "none"] | list[float] = "auto"
    sampler: Literal["random", "grid"] = "random"
    balanced: bool = Field(default=False, description="Centre chips on classes drawn uniformly (rare classes).")
    augment: Augment = Field(default_factory=lambda: Augment())
    seed: int = 0
    amp: bool | Literal["bf16", "fp16"] = Field(
        default=True, description="Mixed precision: true = bf16 (or fp16) autocast on CUDA only; 'bf16' / 'fp16': "
        "that autocast on any device, CPU included.")
    channels_last: bool = True
    early_stopping_patience: int = Field(default=0, ge=0, description="Epochs without gain; 0: off.")
    monitor: Literal["val_loss", "val_miou", "val_accuracy"] = Field(
        default="val_loss", description="Validation score that picks the kept epoch (and drives early stopping).")
    val_chips: int = Field(default=32, ge=1, description="Grid chips of the validation blocks scored each epoch.")
    random_forest_trees: int = Field(default=100, ge=1)
    random_forest_max_pixels: int = Field(default=50_000, ge=100)


class Candidate(_Strict):
    """One model competing for the bundle: the `[model]` network, or a per-pixel classifier on bands and indices."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Its row in the card's table.")
    kind: Literal["network", "random-forest", "hist-gradient-boosting"]
    indices: list[str] = Field(default_factory=list, description="Sentinel-2 index names (ndvi, ndwi, ndbi) added "
                               "to the bands (pixel classifiers).")
    neighbourhood: Literal[0, 3] = Field(default=0, description="3: add the 3 x 3 mean of every feature.")
    trees: int = Field(default=100, ge=1, description="Random forest: trees. Boosting: iterations.")
    max_depth: int | None = Field(default=None, ge=1)
    min_samples_leaf: int = Field(default=1, ge=1)
    learning_rate: float = Field(default=0.1, gt=0, description="Boosting only.")
    max_pixels: int = Field(default=50_000, ge=100, description="Training pixels drawn (seeded) at most.")
    scene: Literal["none", "median-mad", "percentiles", "histogram-match", "dark-object"] = Field(
        default="none", description="Per-scene input normalisation, statistics over each whole image (training) or "
        "input raster (predict): robust standardisation (median / MAD), 2nd-98th percentile scaling, histogram "
        "matching onto the training scenes' pooled quantiles (stored in the card), or dark-object subtraction "
        "(x - p1 per band).")
    bands: list[str] | None = Field(default=None, description="Pixel classifiers: the bands whose values are "
                                    "features (default all; [] = indices only); the input keeps every band.")
    dates: Literal[1, 2] = Field(default=1, description="2: the target pass stacked with the previous pass of the same "
                                 "area (images ordered by `acquired`), each scene-normalised on its own; a stack "
                                 "holding a held-out date is never trained on, a date without a previous pass is "
                                 "not predicted.")
    augment: Augment | None = Field(default=None, description="Networks: radiometric and geometric augmentation "
                                    "replacing [train.augment] for this candidate.")

    @model_validator(mode="after")
    def _pixel_only(self) -> Candidate:
        if self.kind == "network" and (self.indices or self.neighbourhood):
            raise ValueError(f"candidate {self.name!r}: indices and neighbourhood are for pixel classifiers")
        if self.kind != "network" and self.augment is not None:
            raise ValueError(f"candidate {self.name!r}: augment is for networks")
        if self.kind == "network" and self.bands is not None:
            raise ValueError(f"candidate {self.name!r}: bands is for pixel classifiers")
        if self.bands == [] and not self.indices:
            raise ValueError(f"candidate {self.name!r}: bands = [] keeps no feature without indices")
        return self


class Selection(_Strict):
    """How the bundle is chosen among the candidates: by `metric` on the held-out dates or areas only."""

    metric: Literal["miou", "overall_accuracy"] = "miou"
    tolerance: float = Field(default=0.0, ge=0, le=0.1, description="Candidates within this much of the best "
                             "`metric` on the held-out set are tied; the first listed of them wins (list cheaper "
                             "models first).")
    kinds: list[Literal["network", "random-forest", "hist-gradient-boosting"]] | None = Field(
        default=None, min_length=1, description="Only candidates of these kinds may win (e.g. ['network'] for the "
        "network bundle); the others stay in the table as references. Default: every kind.")
    winner_bundle: str = Field(default="", description="With `kinds`: the bundle that ships the overall winner of "
                               "the same table (named in the card's why).")


class ModelSection(Architecture):
    """The network, as `geovigie.models.Architecture`."""

    model_config = ConfigDict(extra="forbid")


class Output(_Strict):
    """The bundle written at the end."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    version: str = "1"
    description: str = ""
    limitations: str = ""
    data: str = Field(default="", description="What the data are, in words, for the card's provenance.")
    onnx: bool = True


class ExperimentConfig(_Strict):
    """A whole experiment."""

    images: Images
    labels: Labels = Field(default_factory=lambda: Labels())
    classes: list[ClassSpec] = Field(min_length=2)
    split: Split = Field(default_factory=lambda: Split())
    model: ModelSection = Field(default_factory=ModelSection)
    train: Optimisation = Field(default_factory=lambda: Optimisation())
    candidates: list[Candidate] = Field(default_factory=list, description="Models trained on the same splits and "
                                        "scored on the same held-out dates / areas; the winner becomes the bundle. "
                                        "Empty: the network, with a random forest and the majority class beside it.")
    selection: Selection = Field(default_factory=lambda: Selection())
    output: Output
    base_dir: str = Field(default=".", description="Folder of relative paths.")

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentConfig:
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise ValueError(f"class names must be unique: {names}")
        seen: dict[str, str] = {}
        for spec in self.classes:
            for source in spec.sources:
                key = str(source)
                if key in seen:
                    raise ValueError(f"source value {source!r} maps to both {seen[key]!r} and {spec.name!r}")
                seen[key] = spec.name
        if self.labels.unlabelled != "ignore" and self.labels.unlabelled not in names:
            raise ValueError(f"labels.unlabelled = {self.labels.unlabelled!r} is neither 'ignore' nor a class {names}")
        if self.candidates:
            if self.split.mode == "blocks":
                raise ValueError("candidates are chosen on held-out dates, areas or polygons, never on neighbouring "
                                 "blocks: set split.mode = 'leave-one-date-out', 'leave-one-area-out' or "
                                 "'spatial-folds'")
            labels = [c.name for c in self.candidates]
            if len(set(labels)) != len(labels) or "majority_class" in labels:
                raise ValueError(f"candidate names must be unique and not 'majority_class': {labels}")
            kinds = self.selection.kinds
            if kinds is not None and not any(c.kind in kinds for c in self.candidates):
                raise ValueError(f"selection.kinds = {kinds} matches no candidate (kinds listed: "
                                 f"{sorted({c.kind for c in self.candidates})})")
        if isinstance(self.train.class_weights, list) and len(self.train.class_weights) != len(names):
            raise ValueError(f"train.class_weights needs one weight per class ({len(names)})")
        return self

    def resolve(self, path: str) -> Path:
        """A path of the config, relative to its folder."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else Path(self.base_dir) / candidate

    @property
    def class_names(self) -> list[str]:
        """Model class names, in class-value order."""
        return [c.name for c in self.classes]

    def dump(self) -> dict[str, Any]:
        """The config as plain JSON-able data (saved into the bundle)."""
        return self.model_dump(mode="json", exclude={"base_dir"})


def parse_config(data: dict[str, Any], base_dir: str | Path, source: str = "config") -> ExperimentConfig:
    """Validate a config mapping; relative paths will be read from `base_dir`."""
    return validate(ExperimentConfig, {**data, "base_dir": str(base_dir)}, source, error=ConfigError)


def load_config(path: str | Path) -> ExperimentConfig:
    """Read an experiment TOML file.

    Raises:
        InputNotFoundError: no such file.
        ConfigError: not TOML, unknown keys, missing or invalid values (the message names each key).
    """
    data = read_toml(path, "experiment config", error=ConfigError)
    return parse_config(data, Path(path).resolve().parent, source=str(path))
