"""Fixtures of the jobs tests: a catalog with one real Slovenia scene as the job source, and settings using it."""

from __future__ import annotations

from pathlib import Path

import pytest

from geovigie.catalog.samples import SLOVENIA
from geovigie.catalog.stac import CatalogClient, StaticItemStore
from tests._support.writes import writes_settings


@pytest.fixture
def inputs(tmp_path: Path, catalog_dir: Path) -> Path:
    """A catalog holding one real Slovenia scene (the job's source, named `samples` in the settings)."""
    items = {i.id: i for i in CatalogClient.open(catalog_dir).search(collections=[SLOVENIA]).items()}
    store = StaticItemStore(tmp_path / "inputs")
    store.upsert(items["slovenia-reference-scene-2"].clone())
    return store.root


@pytest.fixture
def settings(tmp_path: Path, pgstac_url: str, inputs: Path):
    return writes_settings(tmp_path / "gv", pgstac_url, catalog_sources={"samples": str(inputs)},
                           public_url="https://geo.example.fr/geovigie")
