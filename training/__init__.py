"""Training: experiments from a TOML config (imagery, labels, class mapping, splits, loop, baselines, bundle)."""

from geovigie.training._config import ConfigError, ExperimentConfig, load_config, parse_config
from geovigie.training._data import Scene, load_scenes
from geovigie.training._experiment import ExperimentResult, normalisation_of, run_experiment, summary_rows
from geovigie.training._hooks import CheckpointError, load_checkpoint
from geovigie.training._labels import FIELD_STATUSES, LabelError, field_record, write_field_records
from geovigie.training._metrics import confusion_matrix, object_scores, scores
from geovigie.training._parallel import Distributed, amp_dtype
from geovigie.training._split import EmptySplitError, SceneSplit, spatial_split
from geovigie.training._targets import IGNORE, class_weights_for

__all__ = [
    "FIELD_STATUSES",
    "IGNORE",
    "CheckpointError",
    "ConfigError",
    "Distributed",
    "EmptySplitError",
    "ExperimentConfig",
    "ExperimentResult",
    "LabelError",
    "Scene",
    "SceneSplit",
    "amp_dtype",
    "class_weights_for",
    "confusion_matrix",
    "field_record",
    "load_checkpoint",
    "load_config",
    "load_scenes",
    "normalisation_of",
    "object_scores",
    "parse_config",
    "run_experiment",
    "scores",
    "spatial_split",
    "summary_rows",
    "write_field_records",
]
