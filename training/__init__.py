"""Training: chips from STAC imagery and labels, spatial-block splits, a plain loop, honest metrics."""

from geovigie.training._loop import TrainConfig, train
from geovigie.training._metrics import confusion_matrix, scores
from geovigie.training._split import block_split
from geovigie.training.landcover import train_landcover_baseline

__all__ = ["TrainConfig", "block_split", "confusion_matrix", "scores", "train", "train_landcover_baseline"]
