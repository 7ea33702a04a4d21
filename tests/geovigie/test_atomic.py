from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from geovigie.atomic import atomic_path
from geovigie.cog import cog_writer


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_failed_cog_write_leaves_nothing(tmp_path: Path) -> None:
    profile = {"driver": "GTiff", "width": 300, "height": 300, "count": 1, "dtype": "uint8",
               "crs": "EPSG:2154", "transform": Affine(10, 0, 600000, 0, -10, 6800000), "nodata": 255}
    with pytest.raises(RuntimeError), cog_writer(tmp_path / "x.tif", profile=profile) as dst:
        dst.write(np.zeros((1, 300, 300), np.uint8))
        raise RuntimeError("crash mid-way")
    assert list(tmp_path.iterdir()) == []


def test_cog_writer_makes_a_valid_cog(tmp_path: Path) -> None:
    from rio_cogeo.cogeo import cog_validate

    profile = {"driver": "GTiff", "width": 700, "height": 600, "count": 1, "dtype": "uint8",
               "crs": "EPSG:2154", "transform": Affine(10, 0, 600000, 0, -10, 6800000), "nodata": 255}
    data = (np.arange(700 * 600) % 7).astype(np.uint8).reshape(1, 600, 700)
    with cog_writer(tmp_path / "x.tif", profile=profile, colormap={0: (255, 0, 0, 255)}) as dst:
        dst.write(data[:, :300], window=rasterio.windows.Window(0, 0, 700, 300))
        dst.write(data[:, 300:], window=rasterio.windows.Window(0, 300, 700, 300))
    valid, errors, _ = cog_validate(str(tmp_path / "x.tif"))
    assert valid, errors
    with rasterio.open(tmp_path / "x.tif") as src:
        assert (src.read() == data).all()
        assert src.colormap(1)[0] == (255, 0, 0, 255)
        assert src.overviews(1)


def test_written_files_get_the_mode_of_a_plain_open_even_when_the_writer_replaces_the_file(tmp_path: Path) -> None:
    """mkstemp creates 0600 files, and writers such as safetensors replace the file they are given."""
    import os

    import torch
    from safetensors.torch import save_file

    umask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "weights.safetensors") as tmp:
            save_file({"w": torch.zeros(2)}, str(tmp))
        with atomic_path(tmp_path / "card.json") as tmp:
            tmp.write_text("{}")
    finally:
        os.umask(umask)
    assert {oct(p.stat().st_mode & 0o777) for p in tmp_path.iterdir()} == {"0o644"}
