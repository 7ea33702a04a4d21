"""Workflows: one function per product, from items and settings to published layers.

The CLI, the demo and (next) the jobs API and the batch watcher call these; none assembles STAC metadata itself.
"""

from geovigie.workflows._appearance_change import AppearanceChangeResult, appearance_change
from geovigie.workflows._batch import BatchJob, BatchReport, Selection, run_batch, search_items, watch_batch
from geovigie.workflows._batch_config import BatchConfig, load_batch_config
from geovigie.workflows._boundaries import boundaries
from geovigie.workflows._demo_inputs import lidar_models, odeon_mosaics
from geovigie.workflows._dump_change import DumpChangeResult, dump_change
from geovigie.workflows._dumps import DumpPassResult, detector_input, dump_sites, watch_folder
from geovigie.workflows._heat import HeatIslandResult, heat_islands
from geovigie.workflows._indices import ndvi, surface_temperature
from geovigie.workflows._jobs import run_job, run_jobs, worker_id
from geovigie.workflows._landcover import landcover
from geovigie.workflows._published import PublishedLayer, layer_target
from geovigie.workflows._report import report
from geovigie.workflows._vegetation import VegetationResult, vegetation_by_zone
from geovigie.workflows._zan import ZanResult, zan

__all__ = [
    "BatchConfig",
    "BatchJob",
    "BatchReport",
    "Selection",
    "DumpPassResult",
    "HeatIslandResult",
    "PublishedLayer",
    "VegetationResult",
    "ZanResult",
    "boundaries",
    "AppearanceChangeResult",
    "appearance_change",
    "DumpChangeResult",
    "dump_change",
    "detector_input",
    "dump_sites",
    "heat_islands",
    "landcover",
    "layer_target",
    "lidar_models",
    "load_batch_config",
    "ndvi",
    "odeon_mosaics",
    "report",
    "run_job",
    "run_jobs",
    "run_batch",
    "search_items",
    "surface_temperature",
    "vegetation_by_zone",
    "watch_batch",
    "watch_folder",
    "worker_id",
    "zan",
]
