"""Two passes of a place read, cleaned and vectorised one block at a time: memory flat whatever the raster size.

The change detectors (`height_change_candidates`, `appearance_change_candidates`) go over the common grid of two
rasters in square blocks, row by row. What needs the whole raster is kept per connected component, never per
pixel: components of a mask are labelled in each block and stitched across block edges (a candidate crossing an
edge or a corner is one candidate), the sieve that removes specks and fills holes is GDAL's, decided on the
stitched components, and medians are exact order statistics found by histogram passes. With one block covering
the raster the result is the whole-array computation's.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.features
import rasterio.warp
import shapely
from affine import Affine
from rasterio.windows import Window, from_bounds
from scipy import ndimage
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from geovigie.diagnostics._dumps import _open
from geovigie.errors import GridMismatchError, InvalidInputError
from geovigie.progress import Progress, progress_bar

DEFAULT_BLOCK_PX = 1024
"""Side of the blocks read at once, pixels. Memory grows with its square, not with the raster's size: peak RSS
0.55 GB for a 5-band appearance change at 1024 with a 64 MB GDAL cache, 0.8 GB on 16 times the pixels (the rest
is per component of the change mask), against 4.4 GB for the whole array at 4000² (BENCHMARKS.md)."""
_CROSS = ndimage.generate_binary_structure(2, 1)
Bands = dict[str, np.ndarray]
RoleCheck = Callable[[rasterio.DatasetReader, rasterio.DatasetReader], tuple[dict[str, int], dict[str, int]]]
"""Validates the two opened passes and returns each one's 1-based band index per role used."""


def check_block(block_px: int, halo_px: int, what: str) -> None:
    """A block side an engineer can use: a whole number of pixels no smaller than the halo each block reads."""
    if isinstance(block_px, bool) or not isinstance(block_px, int) or block_px < max(1, halo_px):
        raise InvalidInputError(f"block_px {block_px!r}: blocks must be a whole number of pixels >= {max(1, halo_px)}"
                                f" (the {halo_px} px halo {what} reads around each block)")


def blocks(height: int, width: int, size: int) -> list[Window]:
    """Square blocks covering a height × width grid, row by row (the last row and column are narrower)."""
    return [Window(col, row, min(size, width - col), min(size, height - row))
            for row in range(0, height, size) for col in range(0, width, size)]


def grown(window: Window, halo: int) -> Window:
    """`window` with `halo` pixels more on each side (past the grid edge too: those read as nodata)."""
    return Window(window.col_off - halo, window.row_off - halo, window.width + 2 * halo, window.height + 2 * halo)


class PassPair:
    """Two passes of a place opened on their common grid: the coarser pass's grid cut to their overlap (`before`'s
    at equal pixel size); the other pass is read directly when its pixels line up, else resampled (average from a
    finer grid, bilinear otherwise). `read` gives any window of that grid as float64, NaN = nodata or off-grid."""

    def __init__(self, before: Path, after: Path, roles: RoleCheck) -> None:
        self._stack = contextlib.ExitStack()
        try:
            first = self._stack.enter_context(_open(before))
            second = self._stack.enter_context(_open(after))
            roles_first, roles_second = roles(first, second)
            self._setup(before, after, first, second, roles_first, roles_second)
        except BaseException:
            self._stack.close()
            raise

    def _setup(self, before: Path, after: Path, first: rasterio.DatasetReader, second: rasterio.DatasetReader,
               roles_first: dict[str, int], roles_second: dict[str, int]) -> None:
        if first.crs != second.crs:
            raise GridMismatchError(f"{after}: CRS {second.crs.to_string()} differs from {before}'s "
                                    f"{first.crs.to_string()}; reproject one (gdalwarp -t_srs)")
        west, south = max(first.bounds.left, second.bounds.left), max(first.bounds.bottom, second.bounds.bottom)
        east, north = min(first.bounds.right, second.bounds.right), min(first.bounds.top, second.bounds.top)
        if west >= east or south >= north:
            raise GridMismatchError(f"{after} (bounds {tuple(round(b, 1) for b in second.bounds)}) does not overlap "
                                    f"{before} (bounds {tuple(round(b, 1) for b in first.bounds)})")
        self.swap = abs(second.transform.a * second.transform.e) > abs(first.transform.a * first.transform.e)
        self._ref, self._other = (second, first) if self.swap else (first, second)
        self._ref_roles, self._other_roles = (roles_second, roles_first) if self.swap else (roles_first, roles_second)
        self.roles = tuple(r for r in roles_first if r in roles_second)
        window = from_bounds(west, south, east, north, transform=self._ref.transform).round_offsets().round_lengths()
        if window.width < 1 or window.height < 1:
            raise GridMismatchError(f"{before} and {after}: they overlap by less than one pixel")
        self._base = window
        self.transform: Affine = self._ref.window_transform(window)
        self.crs = self._ref.crs
        self.height, self.width = int(window.height), int(window.width)
        other = self._other.transform
        shift = ~other * (self.transform.c, self.transform.f)
        self.aligned = (other.a == self.transform.a and other.e == self.transform.e and other.b == other.d == 0
                        and all(abs(v - round(v)) < 1e-6 for v in shift))
        self._shift = (round(shift[0]), round(shift[1]))
        self._finer = abs(other.a * other.e) < abs(self.transform.a * self.transform.e)
        self.resampled = None if self.aligned else (before.name if self.swap else after.name)

    def __enter__(self) -> PassPair:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def pixel_area(self) -> float:
        return abs(self.transform.a * self.transform.e - self.transform.b * self.transform.d)

    @property
    def size(self) -> int:
        return self.height * self.width

    def blocks(self, block_px: int) -> list[Window]:
        return blocks(self.height, self.width, block_px)

    def read(self, window: Window) -> tuple[Bands, Bands]:
        """(before, after) bands of `window` (grid pixels, may reach past the grid), float64, NaN = nodata."""
        height, width = int(window.height), int(window.width)
        col0, row0 = max(0, int(window.col_off)), max(0, int(window.row_off))
        col1 = min(self.width, int(window.col_off) + width)
        row1 = min(self.height, int(window.row_off) + height)
        base: Bands = {r: np.full((height, width), np.nan) for r in self.roles}
        moved: Bands = {r: np.full((height, width), np.nan) for r in self.roles}
        if col1 > col0 and row1 > row0:
            inner = Window(col0, row0, col1 - col0, row1 - row0)
            put = (slice(row0 - int(window.row_off), row1 - int(window.row_off)),
                   slice(col0 - int(window.col_off), col1 - int(window.col_off)))
            at = Window(col0 + self._base.col_off, row0 + self._base.row_off, inner.width, inner.height)
            for role in self.roles:
                base[role][put] = self._ref.read(self._ref_roles[role], window=at, masked=True).astype(
                    np.float64).filled(np.nan)
                moved[role][put] = self._read_other(role, inner)
        for array in (*base.values(), *moved.values()):
            array[~np.isfinite(array)] = np.nan
        return (moved, base) if self.swap else (base, moved)

    def _read_other(self, role: str, inner: Window) -> np.ndarray:
        if self.aligned:
            at = Window(self._shift[0] + inner.col_off, self._shift[1] + inner.row_off, inner.width, inner.height)
            return self._other.read(self._other_roles[role], window=at, masked=True, boundless=True).astype(
                np.float64).filled(np.nan)
        out = np.full((int(inner.height), int(inner.width)), np.nan)
        rasterio.warp.reproject(rasterio.band(self._other, self._other_roles[role]), out,
                                dst_transform=rasterio.windows.transform(inner, self.transform), dst_crs=self.crs,
                                dst_nodata=np.nan, resampling=rasterio.warp.Resampling.average if self._finer
                                else rasterio.warp.Resampling.bilinear)
        return out


class Footprints:
    """Polygons (buildings, known sites) burnt block by block, all pixels they touch, as on the whole grid."""

    def __init__(self, polygons: gpd.GeoDataFrame | None, transform: Affine, crs: rasterio.crs.CRS) -> None:
        self._geoms: list[BaseGeometry] = []
        if polygons is not None and len(polygons):
            inverse = ~transform
            self._geoms = [shapely.transform(g, lambda xy: _affine(inverse, xy))
                           for g in polygons.to_crs(crs).geometry]
        self._tree = shapely.STRtree(self._geoms) if self._geoms else None

    def mask(self, window: Window, height: int | None = None, width: int | None = None) -> np.ndarray:
        """Pixels of `window` touched by a polygon; pixels past a height × width grid, when given, are left out."""
        shape_ = (int(window.height), int(window.width))
        if self._tree is None:
            return np.zeros(shape_, dtype=bool)
        col, row = int(window.col_off), int(window.row_off)
        hits = self._tree.query(shapely.box(col, row, col + shape_[1], row + shape_[0]))
        if not len(hits):
            return np.zeros(shape_, dtype=bool)
        out = rasterio.features.rasterize(((self._geoms[i], 1) for i in sorted(hits)), out_shape=shape_,
                                          transform=Affine.translation(col, row), fill=0, dtype="uint8",
                                          all_touched=True).astype(bool)
        if height is not None and width is not None:
            out &= _inside(window, height, width)
        return out


def _inside(window: Window, height: int, width: int) -> np.ndarray:
    rows = np.arange(int(window.row_off), int(window.row_off) + int(window.height))
    cols = np.arange(int(window.col_off), int(window.col_off) + int(window.width))
    return ((rows >= 0) & (rows < height))[:, None] & ((cols >= 0) & (cols < width))[None, :]


def _affine(t: Affine, xy: np.ndarray) -> np.ndarray:
    """Points through an affine transform, in GDAL's order of operations (c + a x + b y)."""
    x, y = xy[:, 0], xy[:, 1]
    return np.column_stack([t.c + t.a * x + t.b * y, t.f + t.d * x + t.e * y])


class _Stitch:
    """Components of a labelled mask seen one block at a time, row by row, joined across block edges.

    Every labelled pixel gets a provisional id (block offset + label); ids of equal value touching across a block
    edge are joined, and, when `neighbours`, ids of different values touching are recorded with the raster-order
    position where GDAL's scan first meets them (the sieve's tie-break).
    """

    def __init__(self, width: int, neighbours: bool = False) -> None:
        self.width, self.count, self.neighbours = width, 0, neighbours
        self._above = np.full(width, -1, dtype=np.int64)
        self._above_value = np.zeros(width, dtype=np.int8)
        self._left: tuple[int, np.ndarray, np.ndarray] | None = None
        self._joins: list[np.ndarray] = []
        self._pairs: list[np.ndarray] = []
        self.offsets: dict[tuple[int, int], int] = {}

    def add(self, window: Window, labels: np.ndarray, count: int, values: np.ndarray) -> np.ndarray:
        """Provisional ids of a block's pixels (-1 where unlabelled); `labels` are 1..count, 0 unlabelled."""
        row0, col0 = int(window.row_off), int(window.col_off)
        offset = self.offsets[(row0, col0)] = self.count
        ids = np.where(labels > 0, labels.astype(np.int64) - 1 + offset, -1)
        self.count += count
        cols = np.arange(col0, col0 + ids.shape[1])
        rows = np.arange(row0, row0 + ids.shape[0])
        if row0 > 0:
            self._seam(self._above[col0:col0 + ids.shape[1]], self._above_value[col0:col0 + ids.shape[1]],
                       ids[0], values[0], (row0 * self.width + cols) * 2)
        if col0 > 0 and self._left is not None and self._left[0] == row0:
            self._seam(self._left[1], self._left[2], ids[:, 0], values[:, 0], (rows * self.width + col0) * 2 + 1)
        if self.neighbours:
            self._inner_pairs(ids, values, rows, cols)
        self._above[col0:col0 + ids.shape[1]] = ids[-1]
        self._above_value[col0:col0 + ids.shape[1]] = values[-1]
        self._left = (row0, ids[:, -1].copy(), values[:, -1].copy())
        return ids

    def _seam(self, before: np.ndarray, before_value: np.ndarray, here: np.ndarray, value: np.ndarray,
              keys: np.ndarray) -> None:
        both = (before >= 0) & (here >= 0)
        same = both & (before_value == value)
        if same.any():
            self._joins.append(np.stack([before[same], here[same]]))
        other = both & (before_value != value)
        if self.neighbours and other.any():
            self._pairs.append(np.stack([before[other], here[other], keys[other]]))

    def _inner_pairs(self, ids: np.ndarray, values: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> None:
        down = values[:-1] != values[1:]
        r, c = np.nonzero(down)
        found = [np.stack([ids[:-1][down], ids[1:][down], (rows[r + 1] * self.width + cols[c]) * 2])]
        across = values[:, :-1] != values[:, 1:]
        r, c = np.nonzero(across)
        found.append(np.stack([ids[:, :-1][across], ids[:, 1:][across], (rows[r] * self.width + cols[c + 1]) * 2 + 1]))
        self._pairs.append(_first_meetings(np.concatenate(found, axis=1)))

    def components(self) -> tuple[np.ndarray, int]:
        """Component of each provisional id, and how many components."""
        joins = np.concatenate(self._joins, axis=1) if self._joins else np.zeros((2, 0), dtype=np.int64)
        graph = coo_array((np.ones(joins.shape[1], dtype=np.int8), (joins[0], joins[1])),
                          shape=(self.count, self.count)).tocsr()
        count, component = connected_components(graph, directed=False)
        return component.astype(np.int64), int(count)

    def pairs(self) -> np.ndarray:
        """(id, id, key) of ids of different values that touch, 3 × n."""
        return np.concatenate(self._pairs, axis=1) if self._pairs else np.zeros((3, 0), dtype=np.int64)


def _first_meetings(pairs: np.ndarray) -> np.ndarray:
    """One column per unordered id pair, with its smallest key."""
    if not pairs.shape[1]:
        return pairs
    low, high = np.minimum(pairs[0], pairs[1]), np.maximum(pairs[0], pairs[1])
    order = np.lexsort((pairs[2], high, low))
    low, high, keys = low[order], high[order], pairs[2][order]
    first = np.ones(len(low), dtype=bool)
    first[1:] = (low[1:] != low[:-1]) | (high[1:] != high[:-1])
    return np.stack([low[first], high[first], keys[first]])


def _local_labels(mask: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Both values' 4-connected components of a block, 1..n (ones first), n, and how many are ones."""
    ones, n_ones = ndimage.label(mask, structure=_CROSS)
    zeros, n_zeros = ndimage.label(~mask, structure=_CROSS)
    return np.where(mask, ones, zeros + n_ones), n_ones + n_zeros, n_ones


class Sieve:
    """GDAL's sieve (`rasterio.features.sieve`, 4-connectivity) of a mask seen block by block, with the same result.

    First `add` every block (row by row), then `apply` any block. A component of either value smaller than `size`
    pixels takes the value of its largest neighbour (ties: the one GDAL's raster scan meets first); when that one is
    small too, of the first neighbour down that chain as large as `size`, else it stays. Memory grows with the
    number of components, not pixels.
    """

    def __init__(self, height: int, width: int, size: int) -> None:
        self.size = min(size, height * width - 1)  # GDAL refuses a sieve as large as the image (as `_clean`)
        self._stitch = _Stitch(width, neighbours=True)
        self._sizes: list[np.ndarray] = []
        self._values: list[np.ndarray] = []
        self._flip: np.ndarray | None = None

    @property
    def active(self) -> bool:
        return self.size > 1

    def add(self, window: Window, mask: np.ndarray) -> None:
        if not self.active:
            return
        labels, count, ones = _local_labels(mask)
        self._stitch.add(window, labels, count, mask.astype(np.int8))
        self._sizes.append(np.bincount(labels.ravel(), minlength=count + 1)[1:])
        values = np.zeros(count, dtype=np.int8)
        values[:ones] = 1
        self._values.append(values)

    def resolve(self) -> None:
        """Decide each component's final value (after every block was added)."""
        if not self.active:
            return
        component, count = self._stitch.components()
        sizes = np.bincount(component, weights=np.concatenate(self._sizes), minlength=count).astype(np.int64)
        value = np.zeros(count, dtype=np.int8)
        value[component] = np.concatenate(self._values)
        pairs = self._stitch.pairs()
        pairs = _first_meetings(np.stack([component[pairs[0]], component[pairs[1]], pairs[2]]))
        src = np.concatenate([pairs[0], pairs[1]])
        dst = np.concatenate([pairs[1], pairs[0]])
        keys = np.concatenate([pairs[2], pairs[2]])
        order = np.lexsort((keys, -sizes[dst], src))
        src, dst = src[order], dst[order]
        first = np.ones(len(src), dtype=bool)
        first[1:] = src[1:] != src[:-1]
        biggest = np.full(count, -1, dtype=np.int64)
        biggest[src[first]] = dst[first]
        final = value.copy()
        small = (sizes < self.size) & (biggest >= 0)
        direct = small & (sizes[np.maximum(biggest, 0)] >= self.size)
        final[direct] = value[biggest[direct]]
        for start in np.flatnonzero(small & ~direct):  # chains of small neighbours: rare
            seen, current = {int(start)}, int(biggest[start])
            while current >= 0 and sizes[current] < self.size and current not in seen:
                seen.add(current)
                current = int(biggest[current])
            if current >= 0 and sizes[current] >= self.size:
                final[start] = value[current]
        self._flip = (final != value)[component]
        self._sizes, self._values = [], []

    def apply(self, window: Window, mask: np.ndarray) -> np.ndarray:
        """The sieved mask of a block added before."""
        if not self.active:
            return mask
        if self._flip is None:
            raise RuntimeError("Sieve.apply before resolve")
        labels, _, _ = _local_labels(mask)
        offset = self._stitch.offsets[(int(window.row_off), int(window.col_off))]
        return mask ^ self._flip[labels.astype(np.int64) - 1 + offset]


@dataclass(frozen=True)
class Component:
    """One connected area of a mask: its outline in the grid's CRS, pixel count and sums of per-pixel values."""

    geometry: BaseGeometry
    pixels: int
    sums: dict[str, float]


class Outlines:
    """4-connected components of a mask seen block by block, joined across block edges, vectorised.

    `add` each block (row by row) with the per-pixel values to average; `components` gives them in the order
    scipy's `label` numbers them on the whole grid (raster order of their first pixel).
    """

    def __init__(self, width: int, columns: Sequence[str] = ()) -> None:
        self._stitch = _Stitch(width)
        self.columns = tuple(columns)
        self._pixels: list[np.ndarray] = []
        self._first: list[np.ndarray] = []
        self._sums: dict[str, list[np.ndarray]] = {c: [] for c in self.columns}
        self._pieces: list[tuple[int, BaseGeometry]] = []

    def add(self, window: Window, mask: np.ndarray, values: dict[str, np.ndarray] | None = None) -> None:
        labels, count = ndimage.label(mask, structure=_CROSS)
        self._stitch.add(window, labels, count, mask.astype(np.int8))
        if not count:
            return
        offset = self._stitch.offsets[(int(window.row_off), int(window.col_off))]
        flat = labels.ravel()
        self._pixels.append(np.bincount(flat, minlength=count + 1)[1:])
        _, where = np.unique(flat, return_index=True)
        rows, cols = np.divmod(where[1:] if flat[where[0]] == 0 else where, mask.shape[1])
        self._first.append((rows + int(window.row_off)) * self._stitch.width + cols + int(window.col_off))
        for column in self.columns:
            data = (values or {})[column].ravel()
            self._sums[column].append(np.bincount(flat, weights=np.where(flat > 0, data, 0.0),
                                                  minlength=count + 1)[1:])
        for geom, value in rasterio.features.shapes(labels.astype(np.int32), mask=labels > 0, connectivity=4,
                                                    transform=Affine.translation(window.col_off, window.row_off)):
            self._pieces.append((offset + int(value) - 1, shape(geom)))

    def components(self, transform: Affine) -> list[Component]:
        if not self._pixels:
            return []
        component, count = self._stitch.components()
        pixels = np.bincount(component, weights=np.concatenate(self._pixels), minlength=count)
        first = np.full(count, np.iinfo(np.int64).max)
        np.minimum.at(first, component, np.concatenate(self._first))
        sums = {c: np.bincount(component, weights=np.concatenate(v), minlength=count) for c, v in self._sums.items()}
        pieces: dict[int, list[BaseGeometry]] = {}
        for provisional, geom in self._pieces:
            pieces.setdefault(int(component[provisional]), []).append(geom)
        out = []
        for c in np.argsort(first, kind="stable"):
            outline = shapely.simplify(shapely.union_all(pieces[int(c)]), 0)  # no vertex left mid-edge at a seam
            out.append(Component(shapely.transform(outline, lambda xy: _affine(transform, xy)), int(pixels[c]),
                                 {k: float(v[c]) for k, v in sums.items()}))
        return out


_KEY_BITS, _SIGN = 20, np.uint64(1 << 63)
COLLECT_MAX = 4_000_000
"""Values held at once to pick an order statistic from; more and the histogram is refined one more pass."""


def _order_keys(values: np.ndarray) -> np.ndarray:
    """Unsigned integers in the order of the float64 values (IEEE 754 bits, negatives flipped)."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.uint64)
    return np.where(bits >> np.uint64(63) == 1, ~bits, bits | _SIGN)


def order_statistics(values_of: Callable[[], Iterable[np.ndarray]], ranks: Sequence[int],
                     top: np.ndarray) -> list[float]:
    """The values of `ranks` (0-based) in the sorted stream `values_of()` yields, exactly, without holding it.

    `top` is the histogram of the values' top 20 order-key bits (`_top_histogram`). Each call of `values_of`
    must yield the same values (one pass over the blocks); each pass refines the bin of each rank by 20 more bits
    while it holds more than COLLECT_MAX values, then collects and sorts its values.
    """
    cumulative = np.cumsum(top)
    ranges: dict[int, tuple[int, int, int]] = {}  # rank -> (key prefix, bits under it, values below the prefix)
    counts: dict[tuple[int, int], int] = {}
    for k in ranks:
        b = int(np.searchsorted(cumulative, k, side="right"))
        ranges[k] = (b, 64 - _KEY_BITS, int(cumulative[b - 1]) if b else 0)
        counts[(b, 64 - _KEY_BITS)] = int(top[b])
    found: dict[int, float] = {}
    while len(found) < len(ranks):
        todo = {k: r for k, r in ranges.items() if k not in found}
        collect = {k: r for k, r in todo.items() if counts[r[:2]] <= COLLECT_MAX}
        hists = {r[:2]: np.zeros(1 << min(_KEY_BITS, r[1]), dtype=np.int64)
                 for k, r in todo.items() if k not in collect}
        held: dict[tuple[int, int], list[np.ndarray]] = {r[:2]: [] for r in collect.values()}
        for values in values_of():
            keys = _order_keys(values)
            for (prefix, bits), hist in hists.items():
                step = min(_KEY_BITS, bits)
                inside = keys[keys >> np.uint64(bits) == prefix]
                hist += np.bincount(((inside >> np.uint64(bits - step)) & np.uint64((1 << step) - 1))
                                    .astype(np.int64), minlength=len(hist))
            for prefix, bits in held:
                held[(prefix, bits)].append(values[keys >> np.uint64(bits) == prefix])
        for k, (prefix, bits, below) in todo.items():
            if k in collect:
                found[k] = float(np.sort(np.concatenate(held[(prefix, bits)]))[k - below])
                continue
            hist = hists[(prefix, bits)]
            step = min(_KEY_BITS, bits)
            within = np.cumsum(hist)
            b = int(np.searchsorted(within, k - below, side="right"))
            ranges[k] = ((prefix << step) | b, bits - step, below + (int(within[b - 1]) if b else 0))
            counts[ranges[k][:2]] = int(hist[b])
            if ranges[k][1] == 0:  # one key left: the value itself
                found[k] = _from_key(ranges[k][0])
    return [found[k] for k in ranks]


def _from_key(key: int) -> float:
    bits = np.array([key], dtype=np.uint64)
    raw = bits ^ _SIGN if key >> 63 else ~bits
    return float(raw.view(np.float64)[0])


def exact_median(values_of: Callable[[], Iterable[np.ndarray]]) -> tuple[float, int]:
    """`np.median` of the values `values_of()` yields (the mean of the two middle ones when even), and how many
    there were (NaN and 0 when none). One pass when they are at most COLLECT_MAX, else usually two more."""
    top = np.zeros(1 << _KEY_BITS, dtype=np.int64)
    held: list[np.ndarray] | None = []
    count = 0
    for values in values_of():
        top += np.bincount((_order_keys(values) >> np.uint64(64 - _KEY_BITS)).astype(np.int64), minlength=len(top))
        count += len(values)
        held = held + [values] if held is not None and count <= COLLECT_MAX else None
    if count == 0:
        return math.nan, 0
    ranks = [count // 2] if count % 2 else [count // 2 - 1, count // 2]
    if held is not None:
        ordered = np.sort(np.concatenate(held))
        picked = [float(ordered[k]) for k in ranks]
    else:
        picked = order_statistics(values_of, ranks, top)
    return float(np.mean(picked)), count


@contextlib.contextmanager
def stage(name: str, total: int, progress: Progress) -> Iterator[Callable[[int], None]]:
    """A progress bar for one pass over the blocks."""
    with progress_bar(name, total=total, enabled=progress) as advance:
        yield advance
