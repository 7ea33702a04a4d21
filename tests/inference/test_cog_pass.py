"""The COG pass of `geovigie.cog.cog_writer` (uncompressed scratch, overviews built in place, GDAL's COG driver).

Outputs must stay what rio-cogeo made before (same full-resolution and overview pixels, nearest for classes,
average for probabilities), valid COGs, byte-identical across reruns (the killed-worker test compares bytes).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window
from rio_cogeo.cogeo import cog_translate, cog_validate
from rio_cogeo.profiles import cog_profiles

from geovigie.cog import cog_writer, overview_factors
from tests.conftest import SLOVENIA_SCENE

WIDTH, HEIGHT = 1100, 1010


def _layers() -> tuple[np.ndarray, np.ndarray]:
    """A class map and 3 'probability' bands made from the shipped scene, tiled to 1100 × 1010, with nodata."""
    with rasterio.open(SLOVENIA_SCENE) as src:
        scene = src.read([2, 3, 4, 8])
    reps = (1, -(-HEIGHT // scene.shape[1]), -(-WIDTH // scene.shape[2]))
    tiled = np.tile(scene, reps)[:, :HEIGHT, :WIDTH]
    proba = np.clip(tiled[:3] / tiled[:3].max() * 250, 0, 250).astype(np.uint8)
    classes = tiled.argmax(axis=0).astype(np.uint8)
    classes[:40, :70] = 255
    proba[:, :40, :70] = 255
    return classes[None], proba


def _profile(count: int) -> dict:
    return {"driver": "GTiff", "width": WIDTH, "height": HEIGHT, "count": count, "dtype": "uint8", "nodata": 255,
            "crs": "EPSG:32633", "transform": Affine(10, 0, 465000, 0, -10, 5080000)}


def _write(target: Path, data: np.ndarray, resampling: str, **kwargs) -> Path:
    names = [f"b{i}" for i in range(data.shape[0])]
    with cog_writer(target, profile=_profile(data.shape[0]), overview_resampling=resampling, band_descriptions=names,
                    tags={"RUN": "x"}, **kwargs) as dst:
        for row in range(0, HEIGHT, 384):  # windows that cut across the 256² blocks, as chunk cells do
            for col in range(0, WIDTH, 448):
                window = Window(col, row, min(448, WIDTH - col), min(384, HEIGHT - row))
                dst.write(data[:, row : row + int(window.height), col : col + int(window.width)], window=window)
    return target


def _rio_cogeo(tmp_path: Path, data: np.ndarray, resampling: str) -> Path:
    plain = tmp_path / f"plain-{resampling}.tif"
    with rasterio.open(plain, "w", **_profile(data.shape[0])) as dst:
        dst.write(data)
    profile = cog_profiles.get("deflate")
    profile.update(blockxsize=256, blockysize=256)
    cog_translate(str(plain), str(tmp_path / f"rio-{resampling}.tif"), profile, overview_resampling=resampling,
                  quiet=True, in_memory=False)
    return tmp_path / f"rio-{resampling}.tif"


def _pixels(path: Path) -> list[np.ndarray]:
    with rasterio.open(path) as src:
        levels = [src.read()]
        for factor in src.overviews(1):
            levels.append(src.read(out_shape=(src.count, -(-src.height // factor), -(-src.width // factor))))
    return levels


@pytest.mark.parametrize("resampling", ["nearest", "average"])
def test_same_pixels_and_overviews_as_rio_cogeo(tmp_path: Path, resampling: str) -> None:
    classes, proba = _layers()
    data = classes if resampling == "nearest" else proba
    ours = _write(tmp_path / "ours.tif", data, resampling)
    valid, errors, warnings = cog_validate(str(ours))
    assert valid and not warnings, (errors, warnings)
    with rasterio.open(ours) as src:
        assert src.overviews(1) == overview_factors(WIDTH, HEIGHT) == [2, 4]
        assert src.descriptions == tuple(f"b{i}" for i in range(data.shape[0]))
        assert src.tags()["RUN"] == "x" and src.tags()["OVERVIEW_RESAMPLING"] == resampling.upper()
        assert src.compression.name == "deflate" and src.block_shapes[0] == (256, 256) and src.nodata == 255
    reference = _pixels(_rio_cogeo(tmp_path, data, resampling))
    mine = _pixels(ours)
    assert len(mine) == len(reference) == 3
    for level, (a, b) in enumerate(zip(mine, reference, strict=True)):
        assert np.array_equal(a, b), f"level {level} differs from rio-cogeo's"
    assert np.array_equal(mine[0], data)


def test_reruns_are_byte_identical_and_scratch_compression_changes_nothing(tmp_path: Path) -> None:
    _, proba = _layers()
    first = _write(tmp_path / "a.tif", proba, "average")
    second = _write(tmp_path / "b.tif", proba, "average")
    zstd = _write(tmp_path / "c.tif", proba, "average", scratch_compress="zstd")
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (first, second, zstd)}
    assert len(digests) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif", "b.tif", "c.tif"]  # no scratch left behind


def test_small_rasters_get_no_overviews() -> None:
    assert overview_factors(255, 4000) == []
    assert overview_factors(8192, 8192) == [2, 4, 8, 16, 32]
