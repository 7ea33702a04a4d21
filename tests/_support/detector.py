"""The dump-site detector retrained from field feedback, built by the tests on the shipped IGN LiDAR HD tiles.

No labelled dump data ships, so the field export is made up by the test, as in tests/training/test_feedback_labels.py:
the raised objects of the height stand-in layer (trees, buildings) become visited sites, the low ones (mean height
under `LOW_M`) "confirmed", the tall ones "false alarms". What is tested is the path field export -> `train` ->
`predict` -> `dumps`, not a dump detector's quality.
"""

from __future__ import annotations

import tomllib
import warnings
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from shapely.geometry import mapping

from tests._support.lidar import write_lidar_layers
from tests.conftest import REPO

CONFIG = REPO / "training" / "configs" / "dump-sites-feedback-lidarhd-montpellier.toml"
LOW_M = 6.0
"""Sites of the stand-in whose mean height is under this are "confirmed" by the test's made-up field visits."""


@dataclass(frozen=True)
class FeedbackDetector:
    """What the tests build: the field export, the trained bundle, the 2-band input it predicts on."""

    records: Path
    visited: gpd.GeoDataFrame
    """The visited sites (EPSG:2154) with a `status` column."""
    bundle: Path
    stack: Path
    dsm: Path
    dtm: Path
    config: Path


def field_export(folder: Path, layer: Path) -> tuple[Path, gpd.GeoDataFrame]:
    """Field records on the stand-in's raised objects (see the module docstring), as the service exports them."""
    from geovigie.diagnostics import extract_sites
    from geovigie.training import field_record, write_field_records

    sites = extract_sites(layer, threshold=0.2, pass_date=date(2024, 5, 1), candidate=True)
    low = sites["mean_confidence"] * 10 < LOW_M  # stand-in probability = height / 10 m
    visited = gpd.GeoDataFrame({"status": np.where(low, "confirmed", "false_alarm")}, geometry=sites.geometry,
                               crs=sites.crs)
    records = [field_record(mapping(geom), status, "2024-05-02", "agent", site_id=f"s{i}", watch="montpellier")
               for i, (geom, status) in enumerate(zip(visited.geometry, visited["status"], strict=True))]
    return write_field_records(folder / "field-validation.geojson", records, crs="EPSG:2154"), visited


def feedback_config(folder: Path, records: Path) -> Path:
    """The shipped feedback config with its labels on `records` and its image paths absolute."""
    from tests.training.conftest import write_toml

    data = tomllib.loads(CONFIG.read_text())
    data["labels"] = {**data["labels"], "path": str(records)}
    data["images"]["files"] = [{**f, "paths": [str((CONFIG.parent / p).resolve()) for p in f["paths"]]}
                               for f in data["images"]["files"]]
    return write_toml(folder / "dump-sites-feedback.toml", data)


def stack(dsm: Path, dtm: Path, path: Path) -> Path:
    """The LiDAR mosaics as one 2-band raster (dsm, dtm), what the detector predicts on."""
    with rasterio.open(dsm) as a, rasterio.open(dtm) as b:
        profile = {"driver": "GTiff", "width": a.width, "height": a.height, "count": 2, "dtype": "float32",
                   "crs": a.crs, "transform": a.transform, "nodata": a.nodata}
        bands = np.stack([a.read(1), b.read(1)])
    with rasterio.open(path, "w", **profile) as out:
        out.write(bands)
        out.descriptions = ("dsm", "dtm")
    return path


def feedback_detector(folder: Path) -> FeedbackDetector:
    """Field export, training (the shipped config, run_experiment on CPU) and the input stack, in `folder`."""
    from geovigie.training import parse_config, run_experiment

    folder.mkdir(parents=True, exist_ok=True)
    lidar = write_lidar_layers(folder)
    records, visited = field_export(folder, lidar["probability"])
    config = feedback_config(folder, records)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small folds: sklearn and the metrics warn; tested in tests/training
        result = run_experiment(parse_config(tomllib.loads(config.read_text()), config.parent, source=str(config)),
                                folder / "run", device="cpu", progress=False)
    assert result is not None
    return FeedbackDetector(records, visited, result.bundle.path, stack(lidar["dsm"], lidar["dtm"],
                                                                       folder / "stack.tif"),
                            lidar["dsm"], lidar["dtm"], config)
