"""Chunks of tiles for the workers: each tile is predicted once, each chunk blends its own tiles.

The tile grid (`tile_offsets`) is cut into rectangles of about `chunk_tiles`² tiles. A chunk's extent is the union of
its tiles. Along each axis the raster splits into runs covered by the same chunks; a cell (row run × column run)
covered by one chunk only is blended and finished on that chunk's worker; the thin seams covered by several chunks
(the tile overlap, 64 px by default) are kept as weighted logit sums and added, in chunk order, by a seam task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from geovigie.inference._grid import tile_offsets

Window4 = tuple[int, int, int, int]
"""(col, row, width, height) in raster pixels."""


@dataclass(frozen=True)
class Cell:
    """A rectangle of the raster covered by the same chunks; `owners` is how many."""

    col: int
    row: int
    width: int
    height: int
    owners: int

    @property
    def window(self) -> Window4:
        """(col, row, width, height)."""
        return self.col, self.row, self.width, self.height


@dataclass(frozen=True)
class Chunk:
    """Tiles predicted together: their offsets, the extent read once, and the cells of that extent."""

    index: int
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    tile_height: int
    tile_width: int
    cells: tuple[Cell, ...]

    @property
    def extent(self) -> Window4:
        """(col, row, width, height) of the union of the chunk's tiles."""
        row0, col0 = self.rows[0], self.cols[0]
        return col0, row0, self.cols[-1] + self.tile_width - col0, self.rows[-1] + self.tile_height - row0

    @property
    def own_cell(self) -> Cell:
        """The one cell no other chunk covers (its finished block)."""
        return next(cell for cell in self.cells if cell.owners == 1)

    @property
    def tiles(self) -> list[tuple[int, int]]:
        """(row, col) of each tile, row-major."""
        return [(r, c) for r in self.rows for c in self.cols]


def _split(offsets: list[int], per_chunk: int) -> list[list[int]]:
    """Consecutive groups of about `per_chunk` offsets, as even as possible."""
    count = max(1, math.ceil(len(offsets) / per_chunk))
    bounds = [round(i * len(offsets) / count) for i in range(count + 1)]
    return [offsets[bounds[i] : bounds[i + 1]] for i in range(count)]


def _runs(groups: list[list[int]], tile: int) -> list[tuple[int, int, range]]:
    """(start, stop, covering groups) runs along one axis."""
    spans = [(g[0], g[-1] + tile) for g in groups]
    edges = sorted({edge for span in spans for edge in span})
    runs = []
    for start, stop in zip(edges, edges[1:], strict=False):
        covering = [k for k, (a, b) in enumerate(spans) if a <= start and stop <= b]
        runs.append((start, stop, range(covering[0], covering[-1] + 1)))
    return runs


def plan_chunks(width: int, height: int, tile: int, overlap: int, chunk_tiles: int) -> list[Chunk]:
    """Chunks of about `chunk_tiles` × `chunk_tiles` tiles covering the raster, row-major."""
    th, tw = min(tile, height), min(tile, width)
    row_groups = _split(tile_offsets(height, th, overlap), chunk_tiles)
    col_groups = _split(tile_offsets(width, tw, overlap), chunk_tiles)
    row_runs, col_runs = _runs(row_groups, th), _runs(col_groups, tw)
    chunks: list[Chunk] = []
    for kr, rows in enumerate(row_groups):
        for kc, cols in enumerate(col_groups):
            cells = tuple(
                Cell(c0, r0, c1 - c0, r1 - r0, len(rset) * len(cset))
                for r0, r1, rset in row_runs if kr in rset
                for c0, c1, cset in col_runs if kc in cset
            )
            chunks.append(Chunk(len(chunks), tuple(rows), tuple(cols), th, tw, cells))
    return chunks
