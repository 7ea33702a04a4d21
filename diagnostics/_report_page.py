"""A self-contained HTML report (maps and charts as embedded PNGs, tables, methods, sources), written atomically."""

from __future__ import annotations

import base64
import html
import io
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from rasterio.enums import Resampling

from geovigie.diagnostics._export import write_csv

MAX_MAP_PIXELS = 1_000_000


@dataclass(frozen=True)
class Figure:
    """An image and its caption."""

    png: bytes
    caption: str


@dataclass(frozen=True)
class Table:
    """A table shown in the page and written beside it as CSV."""

    frame: pd.DataFrame
    caption: str
    filename: str
    illustrative: bool = False


@dataclass
class Section:
    """A titled part of the report."""

    title: str
    text: str
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    """The whole page."""

    title: str
    territory: str
    period: str
    sections: list[Section]
    sources: list[str]
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def _png(figure: object) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(figure)  # type: ignore[arg-type]
    return buffer.getvalue()


def _matplotlib_cmap(name: str) -> str:
    """rio-tiler names colour maps in lower case (`rdylgn`); matplotlib's names are case-sensitive (`RdYlGn`)."""
    import matplotlib

    by_lower = {known.lower(): known for known in matplotlib.colormaps}
    return by_lower.get(name.lower(), "viridis")


def raster_map_png(raster: str | Path, *, title: str, zones: gpd.GeoDataFrame | None = None,
                   colormap: str | Mapping[int, str] = "viridis", vmin: float | None = None,
                   vmax: float | None = None, unit: str | None = None,
                   legend: Sequence[tuple[int, str, str]] | None = None) -> bytes:
    """A map of a single-band raster read at a bounded size, zones outlined, with a colour bar or a class legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    with rasterio.open(raster) as src:
        scale = max(1.0, float(np.sqrt(src.width * src.height / MAX_MAP_PIXELS)))
        shape = (max(1, int(src.height / scale)), max(1, int(src.width / scale)))
        data = src.read(1, out_shape=shape, masked=True,
                        resampling=Resampling.nearest if legend else Resampling.average)
        extent = (src.bounds.left, src.bounds.right, src.bounds.bottom, src.bounds.top)
        crs = src.crs
    figure, axes = plt.subplots(figsize=(7, 6))
    if legend:
        lut = np.zeros(256, dtype=int)
        colours = ["#ffffff"] * 256
        for value, _name, colour in legend:
            colours[value] = colour
            lut[value] = value
        image = axes.imshow(data, cmap=ListedColormap(colours), vmin=0, vmax=255, extent=extent,
                            interpolation="nearest")
        axes.legend(handles=[Patch(color=c, label=n) for _, n, c in legend], loc="lower left", fontsize=8)
    else:
        image = axes.imshow(data, cmap=_matplotlib_cmap(str(colormap)), vmin=vmin, vmax=vmax, extent=extent)
        bar = figure.colorbar(image, ax=axes, shrink=0.8)
        if unit:
            bar.set_label(unit)
    if zones is not None and not zones.empty:
        local = zones.to_crs(crs)
        local.boundary.plot(ax=axes, color="black", linewidth=0.6)
        for _, zone in local.iterrows():
            point = zone.geometry.representative_point()
            if extent[0] <= point.x <= extent[1] and extent[2] <= point.y <= extent[3]:
                axes.annotate(str(zone["zone_name"]), (point.x, point.y), fontsize=6, ha="center")
        axes.set_xlim(extent[0], extent[1])
        axes.set_ylim(extent[2], extent[3])
    axes.set_title(title)
    axes.set_xlabel(f"x (m, {crs.to_string() if crs else 'no CRS'})")
    axes.set_ylabel("y (m)")
    return _png(figure)


def bar_chart_png(table: pd.DataFrame, category: str, values: Sequence[str], *, title: str, unit: str) -> bytes:
    """Horizontal bars of one or more columns per category (zone); rows without any value are not drawn (a zone
    without data gets no bar, not a bar of 0), and a table with no value at all gives a chart saying so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = table.set_index(category)[list(values)].apply(pd.to_numeric, errors="coerce").dropna(how="all")
    figure, axes = plt.subplots(figsize=(7, max(2.5, 0.3 * len(frame) + 1)))
    if frame.empty:
        axes.text(0.5, 0.5, NO_DATA_TEXT, ha="center", va="center", transform=axes.transAxes)
        axes.set_yticks([])
    else:
        frame.plot.barh(ax=axes)
    axes.set_xlabel(unit)
    axes.set_title(title)
    axes.invert_yaxis()
    return _png(figure)


NO_DATA_TEXT = "pas de données"
"""What the page shows for the figures of a zone that was not (or not enough) observed: never a number."""


def _table_html(table: Table) -> str:
    frame = table.frame.copy()
    unobserved = (frame["status"].isin(["partial", "not_covered"]) if "status" in frame.columns
                  else pd.Series(False, index=frame.index))
    for column in frame.columns:
        if pd.api.types.is_float_dtype(frame[column]):
            text = frame[column].map(lambda v: "" if pd.isna(v) else f"{v:,.3f}".rstrip("0").rstrip("."))
            frame[column] = text.where(~(unobserved & frame[column].isna()), NO_DATA_TEXT)
    banner = '<p class="illustrative">ILLUSTRATIVE data: not official figures.</p>' if table.illustrative else ""
    body = frame.to_html(index=False, escape=True, border=0)
    link = f'<a href="{html.escape(table.filename)}">{html.escape(table.filename)}</a>'
    return f"<figure>{banner}{body}<figcaption>{html.escape(table.caption)} ({link})</figcaption></figure>"


STYLE = """body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}h1{font-size:1.6em}
table{border-collapse:collapse;font-size:.8em}td,th{border-bottom:1px solid #ddd;padding:2px 6px;text-align:right}
figure{margin:1em 0}img{max-width:100%}.illustrative{background:#fee;border:1px solid #c00;padding:4px}
.note{color:#555;font-size:.9em}"""


def render_html(report: Report) -> str:
    """The page as one string (images inline, no external resource, no script)."""
    e = html.escape
    toc = "".join(f'<li><a href="#s{i}">{e(s.title)}</a></li>' for i, s in enumerate(report.sections))
    parts = [f"<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\"><title>{e(report.title)}</title>"
             f"<style>{STYLE}</style></head><body><h1>{e(report.title)}</h1>"
             f"<p>Territoire / territory: {e(report.territory)} · période / period: {e(report.period)} · "
             f"généré / generated {report.generated_at.isoformat(timespec='seconds')}</p><ol>{toc}</ol>"]
    for index, section in enumerate(report.sections):
        parts.append(f'<section id="s{index}"><h2>{e(section.title)}</h2>')
        parts += [f"<p>{e(paragraph)}</p>" for paragraph in section.text.split("\n\n") if paragraph.strip()]
        for figure in section.figures:
            data = base64.b64encode(figure.png).decode()
            parts.append(f'<figure><img alt="{e(figure.caption)}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{e(figure.caption)}</figcaption></figure>")
        parts += [_table_html(table) for table in section.tables]
        parts += [f'<p class="note">{e(note)}</p>' for note in section.notes]
        parts.append("</section>")
    parts.append("<h2>Sources</h2><ul>" + "".join(f"<li>{e(s)}</li>" for s in report.sources) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(report: Report, out_dir: str | Path) -> Path:
    """Write `index.html` and every table's CSV into `out_dir`, which appears (or is replaced) as a whole.

    The folder is written beside the target and renamed over it; a failure leaves any previous report intact.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for section in report.sections:
            for table in section.tables:
                frame = table.frame.assign(illustrative=True) if table.illustrative else table.frame
                write_csv(frame, staging / table.filename)
        (staging / "index.html").write_text(render_html(report), encoding="utf-8")
        old = out_dir.with_name(f".{out_dir.name}.old")
        if out_dir.exists():
            shutil.rmtree(old, ignore_errors=True)
            out_dir.rename(old)
        staging.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir / "index.html"
