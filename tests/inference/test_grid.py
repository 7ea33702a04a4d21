import numpy as np
import pytest

from geovigie.inference._grid import blend_weights, tile_offsets


@pytest.mark.parametrize(("length", "tile", "overlap"), [(100, 64, 16), (1000, 256, 64), (64, 64, 8), (30, 64, 8)])
def test_offsets_cover_without_gaps(length: int, tile: int, overlap: int) -> None:
    offsets = tile_offsets(length, tile, overlap)
    covered = np.zeros(length, bool)
    for start in offsets:
        covered[start : start + tile] = True
    assert covered.all()
    assert offsets == sorted(offsets)
    assert all(b - a <= tile - overlap for a, b in zip(offsets, offsets[1:], strict=False))


def test_overlap_must_leave_a_stride() -> None:
    with pytest.raises(ValueError, match="overlap"):
        tile_offsets(100, 32, 32)


def test_weights_ramp_and_stay_positive() -> None:
    w = blend_weights(64, 64, 16)
    assert w.min() > 0
    assert w[32, 32] == 1
    assert w[0, 32] < w[8, 32] < w[16, 32]
    assert np.allclose(w, w.T)
