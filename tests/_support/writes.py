"""Helpers of the write tests (keys, feedback, jobs, features): settings on a test database, a served app, sites."""

from __future__ import annotations

import warnings
from datetime import date
from pathlib import Path
from typing import Any

import rasterio

from geovigie.settings import Settings
from tests.conftest import DATA


def writes_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    """Settings publishing into (and keeping keys, jobs and feedback in) the test database `database_url`."""
    base: dict[str, Any] = {"data_dir": data_dir, "stac_backend": "pgstac", "database_url": database_url,
                            "device": "cpu", "tile_size": 64, "overlap": 16, "batch_size": 4, "dask_workers": 1,
                            "dask_threads_per_worker": 1, "job_runner": False}
    return Settings(**{**base, **overrides})


def two_dump_passes(settings: Settings, work: Path) -> tuple[Any, Any]:
    """The dump-site workflow run on the shipped LiDAR stand-in (tests/workflows/test_dumps.py): pass 1 on
    2024-05-01, pass 2 on 2024-06-01 with the largest site cleared (so it is `removed`), watch `montpellier`."""
    from geovigie.workflows import dump_sites, lidar_models

    dsm, dtm, layer = lidar_models(DATA, work / "lidar")
    options: dict[str, Any] = {"watch": "montpellier", "candidate": True, "threshold": 0.2, "dsm": dsm, "dtm": dtm}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # volumes left null at the LiDAR edge: tested in tests/workflows
        first = dump_sites(layer, settings, pass_date=date(2024, 5, 1), **options)
        largest = first.sites.sort_values("area_m2").iloc[-1]
        second_layer = without_largest_site(layer, work / "pass2.tif", largest)
        second = dump_sites(second_layer, settings, pass_date=date(2024, 6, 1), **options)
    return first, second


def without_largest_site(layer: Path, target: Path, site: Any) -> Path:
    """Pass 2 = pass 1 with the largest site cleared (documented edit of the real stand-in layer)."""
    from rasterio.features import geometry_mask

    with rasterio.open(layer) as src:
        data, profile = src.read(), src.profile
        inside = ~geometry_mask([site.geometry.buffer(1.0)], out_shape=data.shape[1:], transform=src.transform)
    data[0][inside & (data[0] != 255)] = 0
    profile.update(driver="GTiff")
    with rasterio.open(target, "w", **profile) as dst:
        dst.write(data)
    return target


def make_key(settings: Settings, owner: str = "Service environnement", scope: str = "write") -> str:
    """A new key's secret."""
    from geovigie.service.auth import create_key

    return create_key(settings, owner, scope)[1]
