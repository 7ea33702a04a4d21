import numpy as np
import pytest

from geovigie.inference import tile_windows
from geovigie.inference._blend import StripBlender, finalise
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


def test_strip_blender_equals_full_accumulation() -> None:
    rng = np.random.default_rng(0)
    height, width, classes, tile, overlap = 150, 130, 3, 64, 24
    windows = tile_windows(width, height, tile, overlap)
    logits = {w: rng.normal(size=(classes, tile, tile)).astype(np.float32) for w in windows}
    weights = blend_weights(tile, tile, overlap)
    full = np.zeros((classes, height, width), np.float32)
    wsum = np.zeros((height, width), np.float32)
    for (col, row, tw, th), value in logits.items():
        full[:, row : row + th, col : col + tw] += value * weights
        wsum[row : row + th, col : col + tw] += weights
    expected_classes, expected_proba = finalise(full, wsum, np.ones((height, width), bool))

    out_classes = np.full((height, width), 77, np.uint8)
    out_proba = np.zeros((classes, height, width), np.uint8)

    def write(row: int, c: np.ndarray, p: np.ndarray) -> None:
        out_classes[row : row + c.shape[0]] = c
        out_proba[:, row : row + c.shape[0]] = p

    blender = StripBlender(width, height, classes, tile, write)
    for window, value in logits.items():
        blender.add(window[1], window[0], value, np.ones((tile, tile), bool), weights)
    blender.close()
    assert np.array_equal(out_classes, expected_classes)
    assert np.abs(out_proba.astype(int) - expected_proba).max() <= 1
