"""Experiment configs, labels (raster, vector, field records) and splits on the shipped Slovenia data."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import mapping

from geovigie.errors import GeovigieError
from geovigie.training import (
    ConfigError,
    EmptySplitError,
    LabelError,
    field_record,
    load_config,
    load_scenes,
    parse_config,
    spatial_split,
    write_field_records,
)
from geovigie.training._samplers import ChipSampler
from geovigie.training._targets import IGNORE
from tests.conftest import REPO
from tests.training.conftest import POLYGONS, SLOVENIA_DIR, tiny_config, write_toml


def test_unknown_config_key_is_named(tmp_path: Path) -> None:
    config = tiny_config(train={"epochs": 2, "learning_rate": 0.1})
    with pytest.raises(ConfigError, match="unknown key 'train.learning_rate'"):
        load_config(write_toml(tmp_path / "x.toml", config))
    with pytest.raises(ConfigError, match="needs split.holdout"):
        parse_config(tiny_config(split={"mode": "leave-one-date-out"}), tmp_path)


def test_shipped_configs_are_valid() -> None:
    configs = sorted((REPO / "training" / "configs").glob("*.toml"))
    assert len(configs) >= 3
    for path in configs:
        config = load_config(path)
        for entry in config.images.files:
            assert all(config.resolve(f).is_file() for f in entry.files), path


def test_a_class_missing_from_the_mapping_is_listed(tmp_path: Path) -> None:
    config = tiny_config()
    config["classes"] = [c for c in config["classes"] if c["sources"] != [8]]
    with pytest.raises(LabelError, match=r"source classes \['8'\] are not in the class mapping"):
        load_scenes(parse_config(config, tmp_path))


def test_raster_labels_follow_the_mapping(tiny) -> None:
    scenes, bands = load_scenes(parse_config(tiny, "."))
    with rasterio.open(SLOVENIA_DIR / "lulc_mask.tif") as src:
        raw = src.read(1)
    assert len(bands) == 13 and len(scenes) == 3
    labels = scenes[0].labels
    assert (labels[raw == 8] == 4).all() and (labels[raw == 2] == 1).all()
    assert (labels[raw == 0] == IGNORE).all()


def _vector_config(path: Path, **labels: object) -> dict:
    return tiny_config(labels={"source": "vector", "path": str(path), "attribute": "LULC_ID", **labels})


def test_vector_labels_in_another_crs_are_reprojected(tmp_path: Path) -> None:
    wgs84 = tmp_path / "lulc_4326.geojson"
    gpd.read_file(POLYGONS).to_crs("EPSG:4326").to_file(wgs84)
    scenes, _ = load_scenes(parse_config(_vector_config(wgs84), tmp_path))
    with rasterio.open(SLOVENIA_DIR / "lulc_mask.tif") as src:
        raw = src.read(1)
    reference, _ = load_scenes(parse_config(tiny_config(), tmp_path))
    both = (scenes[0].labels != IGNORE) & (raw != 0)
    agreement = (scenes[0].labels[both] == reference[0].labels[both]).mean()
    assert both.sum() > 8000
    assert agreement > 0.9, agreement  # polygons rasterised at pixel centres vs the eo-learn mask


def test_labels_outside_the_imagery_are_refused(tmp_path: Path) -> None:
    far = tmp_path / "far.gpkg"
    frame = gpd.read_file(POLYGONS)
    frame.geometry = frame.geometry.translate(50_000, 0)
    frame.to_file(far)
    with pytest.raises(LabelError, match="do not overlap the image"):
        load_scenes(parse_config(_vector_config(far), tmp_path))
    with pytest.raises(LabelError, match="no class attribute 'CLASS'"):
        load_scenes(parse_config(_vector_config(POLYGONS, attribute="CLASS"), tmp_path))


def _site(x: float, y: float) -> dict:
    from shapely.geometry import Point

    return mapping(Point(x, y))


def test_field_records_are_labels(tmp_path: Path) -> None:
    """Confirmed -> dump, false alarm -> background, cleaned -> ignored (documented default); points -> disks."""
    with rasterio.open(SLOVENIA_DIR / "reference_scene_1.tif") as src:
        west, south, east, north = src.bounds
    records = [field_record(_site(west + 205, north - 305), "confirmed", "2025-06-01", "agent A"),
               field_record(_site(west + 605, north - 505), "false_alarm", "2025-06-02", "agent B"),
               field_record(_site(west + 405, north - 805), "cleaned", "2025-06-03", "agent A")]
    path = write_field_records(tmp_path / "visits.geojson", records, crs="EPSG:32633")
    config = tiny_config(labels={"source": "field-validation", "path": str(path), "point_radius_m": 30,
                                 "ignore_values": ["cleaned"], "min_records": 1},
                         classes=[{"name": "background", "sources": ["false_alarm"]},
                                  {"name": "dump", "sources": ["confirmed"]}])
    scenes, _ = load_scenes(parse_config(config, tmp_path))
    labels = scenes[0].labels
    disk = np.pi * 3**2  # 30 m radius at 10 m
    assert abs((labels == 1).sum() - disk) < 0.35 * disk
    assert abs((labels == 0).sum() - disk) < 0.35 * disk
    assert labels[30, 20] == 1 and labels[50, 60] == 0 and labels[80, 40] == IGNORE
    with pytest.raises(GeovigieError, match="status 'done'"):
        field_record(_site(west, north), "done", "2025-06-01", "x")
    bad = tmp_path / "bad.geojson"
    bad.write_text(path.read_text().replace('"agent B"', '""'))
    with pytest.raises(LabelError, match="feature 1 has no author"):
        load_scenes(parse_config({**config, "labels": {**config["labels"], "path": str(bad)}}, tmp_path))


def test_split_sets_never_overlap_and_keep_a_buffer(tiny) -> None:
    scenes, _ = load_scenes(parse_config(tiny, "."))
    split = spatial_split(scenes, block_px=20, buffer_px=3, val_fraction=0.2, test_fraction=0.2, seed=7)
    for masks in split.values():
        assert not (masks.train & masks.val).any() and not (masks.train & masks.test).any()
        assert not (masks.val & masks.test).any()
        near = masks.val | masks.test
        rows, cols = np.nonzero(masks.train)
        for r, c in zip(rows[::37], cols[::37], strict=True):
            assert not near[max(0, r - 3) : r + 4, max(0, c - 3) : c + 4].any()
        assert masks.test.mean() > 0.1 and masks.val.mean() > 0.1
    first = next(iter(split.values()))
    assert all(np.array_equal(first.test, m.test) for m in split.values())  # the same place on every date


def test_leave_one_date_out_holds_a_whole_date(tiny) -> None:
    scenes, _ = load_scenes(parse_config(tiny, "."))
    split = spatial_split(scenes, mode="leave-one-date-out", holdout="scene-2", block_px=20, buffer_px=2,
                          val_fraction=0.2, test_fraction=0.2, seed=0)
    held = split["reference_scene_2"]
    assert held.heldout and not held.train.any() and not held.val.any()
    assert split["reference_scene_1"].train.any() and not split["reference_scene_1"].heldout
    with pytest.raises(EmptySplitError, match="matches no image date"):
        spatial_split(scenes, mode="leave-one-date-out", holdout="2020", block_px=20, buffer_px=2,
                      val_fraction=0.2, test_fraction=0.2, seed=0)


def test_samplers_stay_in_the_set_and_balance_classes(tiny) -> None:
    scenes, _ = load_scenes(parse_config(tiny, "."))
    split = spatial_split(scenes, block_px=20, buffer_px=2, val_fraction=0.2, test_fraction=0.2, seed=7)
    masks = [split[s.name].train for s in scenes]
    sampler = ChipSampler([s.labels for s in scenes], masks, 32, 5)
    plain = sampler.epoch(400, mode="random", balanced=False, seed=0, epoch=0)
    balanced = sampler.epoch(400, mode="random", balanced=True, seed=0, epoch=0)
    assert plain == sampler.epoch(400, mode="random", balanced=False, seed=0, epoch=0)  # seeded
    assert plain != sampler.epoch(400, mode="random", balanced=False, seed=0, epoch=1)

    def artificial_share(chips: list) -> float:
        return float(np.mean([(sampler.labels[s][r : r + 32, c : c + 32] == 4).mean() for s, r, c in chips]))

    assert artificial_share(balanced) > 1.5 * artificial_share(plain)
    for scene, row, col in sampler.epoch(50, mode="grid", balanced=False, seed=0, epoch=0):
        assert (sampler.labels[scene][row : row + 32, col : col + 32] != IGNORE).any()
        assert masks[scene][row : row + 32, col : col + 32].any()
    tiny_val = spatial_split(scenes, block_px=20, buffer_px=40, val_fraction=0.2, test_fraction=0.2, seed=7)
    assert not any(m.train.any() for m in tiny_val.values())  # a huge buffer leaves nothing: check_split says so
