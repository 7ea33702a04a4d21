import io
from pathlib import Path

import morecantile
import numpy as np
import pytest
from PIL import Image

from geovigie.errors import TileOutsideBoundsError
from geovigie.tiles import LayerIndex, LayerSpec, Provenance, publish_layer, render_tile
from tests._support.layers import CLASSES, class_cog


def _layer(tmp_path: Path):
    publish_layer(tmp_path / "r", class_cog(tmp_path / "c.tif"), LayerSpec("lc", "lc", "classes", classes=CLASSES),
                  Provenance(inputs=[], lineage="t"))
    return LayerIndex(tmp_path / "r").get("lc")


def test_class_tile_carries_class_colours(tmp_path: Path) -> None:
    layer = _layer(tmp_path)
    west, south, east, north = layer.bounds
    tile = morecantile.tms.get("WebMercatorQuad").tile((west + east) / 2, (south + north) / 2, 14)
    png = render_tile(layer, tile.z, tile.x, tile.y)
    rgba = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")).reshape(-1, 4)
    opaque = {tuple(p[:3]) for p in rgba if p[3] == 255}
    assert opaque and opaque <= {(0, 0, 255), (0, 255, 0)}
    assert (rgba[:, 3] == 0).any()  # outside the layer and nodata are transparent


def test_tile_outside_bounds(tmp_path: Path) -> None:
    layer = _layer(tmp_path)
    with pytest.raises(TileOutsideBoundsError):
        render_tile(layer, 10, 0, 0)
