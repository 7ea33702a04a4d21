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
from geovigie.paths import safe_join

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


MAX_TABLE_COLUMNS = 7
"""Columns per printed table besides the row label: wider tables are split into several (all columns in the CSV)."""
MAX_TABLE_ROWS = 30
"""Rows shown per table: the rest is in the CSV beside the page."""
MAX_TRANSPOSED_ROWS = 6
"""A table of at most this many rows and too many columns is shown transposed (a column per row)."""
MAX_TICKS = 5
NO_DATA = "pas de données"
"""What the page shows for the figures of a zone that was not (or not enough) observed: never a number."""
NO_DATA_TEXT = NO_DATA
COLUMN_LABELS = {
    "zone_id": "code", "zone_name": "zone", "site_id": "site", "status": "statut", "covered_fraction": "part couverte",
    "observed_share": "part observée",
    "valid_fraction": "part valide", "zone_area_m2": "surface (m²)", "observed_area_ha": "observé (ha)",
    "ndvi_mean": "NDVI moyen", "ndvi_median": "NDVI médian", "ndvi_p10": "NDVI p10", "ndvi_p90": "NDVI p90",
    "dense_vegetation_share": "végétation dense", "sparse_vegetation_share": "végétation clairsemée",
    "artificialised_ha": "artificialisé (ha)", "renaturalised_ha": "renaturé (ha)", "net_ha": "net (ha)",
    "artificialised_ha_no_mmu": "artificialisé (ha, sans seuil)", "artificialised_ha_per_year": "artificialisé (ha/an)",
    "reference_ha_per_year_2011_2021": "référence 2011–2021 (ha/an)",
    "target_ha_per_year_2021_2031": "objectif 2021–2031 (ha/an)", "measured_vs_target": "mesuré / objectif",
    "mean": "moyenne (°C)", "median": "médiane (°C)", "p10": "p10 (°C)", "p90": "p90 (°C)", "min": "min (°C)",
    "max": "max (°C)", "area_m2": "surface (m²)", "volume_m3": "volume (m³)", "volume_note": "note volume",
    "commune_name": "commune", "first_seen": "vu d'abord", "last_seen": "vu en dernier", "candidate": "candidat",
    "centroid_lat": "lat.", "centroid_lon": "lon.", "sites": "sites", "volume_uncertainty_m3": "± volume (m³)",
}
VALUE_LABELS = {"new": "nouveau", "grown": "agrandi", "persisting": "persistant", "shrunk": "réduit",
                "not_observed": "non observé", "removed": "disparu", "covered": "couverte", "partial": "partielle",
                "not_covered": "non couverte",
                "confirmed": "confirmé", "false_alarm": "fausse alerte", "cleaned": "nettoyé"}
"""Statuses written in French in the tables (the CSV keeps the raw values)."""
TEXT_COLUMNS = frozenset({"volume_note", "note", "track_note", "commune_name", "commune_code", "comment"})
"""Columns of free text: empty is « — », not a missing figure."""


def column_label(name: str) -> str:
    """The French header of a raw column name (the CSV keeps the raw names)."""
    return COLUMN_LABELS.get(name, name.replace("_", " "))


def french_number(value: float, digits: int = 2) -> str:
    """1612.75 → « 1 612,75 » (narrow no-break space between thousands, decimal comma)."""
    text = f"{value:,.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.replace(",", "\u202f").replace(".", ",")


def _overlapping_ticks(figure: object) -> int:
    """How many pairs of neighbouring, visible tick labels overlap on any axis of `figure` (drawn first)."""
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    count = 0
    for axes in figure.axes:  # type: ignore[attr-defined]
        for axis in (axes.xaxis, axes.yaxis):
            labels = [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
            boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: (b.x0, b.y0))
            count += sum(a.overlaps(b) for a, b in zip(boxes, boxes[1:], strict=False))
    return count


def _declutter_ticks(figure: object) -> None:
    """Hide every other tick label of an axis until none overlaps (a bounded locator makes this rare)."""
    figure.canvas.draw()  # type: ignore[attr-defined]
    for axes in figure.axes:  # type: ignore[attr-defined]
        for axis in (axes.xaxis, axes.yaxis):
            for _ in range(4):
                renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
                labels = [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
                boxes = sorted(((t.get_window_extent(renderer), t) for t in labels), key=lambda p: (p[0].x0, p[0].y0))
                if not any(a[0].overlaps(b[0]) for a, b in zip(boxes, boxes[1:], strict=False)):
                    break
                for _box, label in boxes[1::2]:
                    label.set_visible(False)


def _png(figure: object) -> bytes:
    import matplotlib.pyplot as plt

    _declutter_ticks(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(figure)  # type: ignore[arg-type]
    return buffer.getvalue()


def _matplotlib_cmap(name: str) -> str:
    """rio-tiler names colour maps in lower case (`rdylgn`); matplotlib's names are case-sensitive (`RdYlGn`)."""
    import matplotlib

    by_lower = {known.lower(): known for known in matplotlib.colormaps}
    return by_lower.get(name.lower(), "viridis")


def _bounded_ticks(axis: object, formatter: object | None = None) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(nbins=MAX_TICKS, min_n_ticks=2))  # type: ignore[attr-defined]
    if formatter is not None:
        axis.set_major_formatter(formatter)  # type: ignore[attr-defined]


def _label_zones(axes: object, zones: gpd.GeoDataFrame, extent: tuple[float, float, float, float]) -> None:
    """Write zone names only where the name fits inside its zone and clears the names already written."""
    figure = axes.figure  # type: ignore[attr-defined]
    renderer = figure.canvas.get_renderer()
    placed: list[object] = []
    names = zones["zone_name"] if "zone_name" in zones else pd.Series([""] * len(zones), index=zones.index)
    order = zones.geometry.area.sort_values(ascending=False).index
    for index in order:
        zone, name = zones.geometry.loc[index], str(names.loc[index] or "")
        point = zone.representative_point()
        if not name or not (extent[0] <= point.x <= extent[1] and extent[2] <= point.y <= extent[3]):
            continue
        text = axes.annotate(name, (point.x, point.y), fontsize=7, ha="center", va="center",  # type: ignore
                             bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7})
        box = text.get_window_extent(renderer)
        minx, miny, maxx, maxy = zone.bounds
        (x0, y0), (x1, y1) = axes.transData.transform([(minx, miny), (maxx, maxy)])  # type: ignore
        fits = box.width < abs(x1 - x0) and box.height < abs(y1 - y0)
        if not fits or any(box.overlaps(other) for other in placed):
            text.remove()
            continue
        placed.append(box)


def raster_map_png(raster: str | Path, *, title: str, zones: gpd.GeoDataFrame | None = None,
                   colormap: str | Mapping[int, str] = "viridis", vmin: float | None = None,
                   vmax: float | None = None, unit: str | None = None,
                   legend: Sequence[tuple[int, str, str]] | None = None) -> bytes:
    """A map of a single-band raster read at a bounded size, zones outlined and named where the name fits, with a
    colour bar or a class legend; coordinates in km with a bounded number of ticks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    with rasterio.open(raster) as src:
        scale = max(1.0, float(np.sqrt(src.width * src.height / MAX_MAP_PIXELS)))
        shape = (max(1, int(src.height / scale)), max(1, int(src.width / scale)))
        data = src.read(1, out_shape=shape, masked=True,
                        resampling=Resampling.nearest if legend else Resampling.average)
        extent = (src.bounds.left, src.bounds.right, src.bounds.bottom, src.bounds.top)
        crs = src.crs
    figure, axes = plt.subplots(figsize=(7, 6))
    if legend:
        colours = ["#ffffff"] * 256
        for value, _name, colour in legend:
            colours[value] = colour
        axes.imshow(data, cmap=ListedColormap(colours), vmin=0, vmax=255, extent=extent, interpolation="nearest")
        axes.legend(handles=[Patch(color=c, label=n) for _, n, c in legend], loc="lower left", fontsize=8,
                    framealpha=0.9)
    else:
        image = axes.imshow(data, cmap=_matplotlib_cmap(str(colormap)), vmin=vmin, vmax=vmax, extent=extent)
        bar = figure.colorbar(image, ax=axes, shrink=0.8)
        _bounded_ticks(bar.ax.yaxis, FuncFormatter(lambda v, _: french_number(v, 1)))
        if unit:
            bar.set_label("°C" if unit == "celsius" else unit)
    if zones is not None and not zones.empty:
        local = zones.to_crs(crs)
        local.boundary.plot(ax=axes, color="black", linewidth=0.6)
        axes.set_xlim(extent[0], extent[1])
        axes.set_ylim(extent[2], extent[3])
        figure.canvas.draw()
        _label_zones(axes, local, extent)
    projected = bool(crs and crs.is_projected)
    span = max(extent[1] - extent[0], extent[3] - extent[2])
    in_km = projected and span >= 5000
    coordinate = FuncFormatter(lambda v, _: french_number(v / 1000 if in_km else v, 1 if in_km else 0))
    _bounded_ticks(axes.xaxis, coordinate)
    _bounded_ticks(axes.yaxis, coordinate)
    axes.set_title(title, fontsize=11, wrap=True)
    where = crs.to_string() if crs else "sans SCR"
    axes.set_xlabel(f"x ({'km' if in_km else 'm'}, {where})")
    axes.set_ylabel(f"y ({'km' if in_km else 'm'})")
    return _png(figure)


def bar_chart_png(table: pd.DataFrame, category: str, values: Sequence[str], *, title: str, unit: str,
                  stacked: bool = False, colors: Sequence[str] | None = None,
                  labels: Sequence[str] | None = None) -> bytes:
    """Horizontal bars of one or more columns per category (zone, pass, site); a category with no value says
    « pas de données » instead of a zero-length bar. Legend and axis in French, a bounded number of ticks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    frame = table.set_index(category)[list(values)].apply(pd.to_numeric, errors="coerce")
    frame.index = [str(i) for i in frame.index]
    frame.columns = list(labels) if labels else [column_label(c) for c in frame.columns]
    figure, axes = plt.subplots(figsize=(7, max(2.5, 0.3 * len(frame) * (1 if stacked else max(1, len(values) / 2))
                                                + 1.2)))
    if frame.isna().all().all():  # no value at all: a chart that says so
        axes.text(0.5, 0.5, NO_DATA, ha="center", va="center", transform=axes.transAxes)
        axes.set_yticks([])
        stacked = False
    else:
        frame.plot.barh(ax=axes, stacked=stacked, color=list(colors) if colors else None, width=0.8)
    missing = frame.isna().all(axis=1)
    for row, empty in enumerate(missing if not frame.isna().all().all() else []):
        if empty:  # a zone without data: no bar (never a bar of 0) and the words saying why
            axes.annotate(NO_DATA, (0, row), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8,
                          color="#555555", style="italic")
    _bounded_ticks(axes.xaxis, FuncFormatter(lambda v, _: french_number(v, 2)))
    axes.set_xlabel(unit)
    axes.set_ylabel("")
    axes.set_title(title, fontsize=11)
    axes.invert_yaxis()
    if len(frame.columns) > 1 or stacked:
        axes.legend(fontsize=8, loc="best")
    elif (shown := axes.get_legend()) is not None:
        shown.remove()
    return _png(figure)


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return NO_DATA
    if isinstance(value, bool | np.bool_):
        return "oui" if value else "non"
    if isinstance(value, int | np.integer):
        return french_number(float(value), 0)
    if isinstance(value, float | np.floating):
        number = float(value)
        digits = 0 if abs(number) >= 10000 else 2 if abs(number) >= 1 else 3
        return french_number(number, digits)
    return str(value)


def _html_table(frame: pd.DataFrame) -> str:
    e = html.escape
    head = "".join(f'<th scope="col" title="{e(str(c))}">{e(column_label(str(c)))}</th>' for c in frame.columns)
    rows = []
    for record in frame.itertuples(index=False):
        cells = [("—" if column in TEXT_COLUMNS and _cell(v) == NO_DATA
                  else VALUE_LABELS.get(v, _cell(v)) if column == "status" else _cell(v))
                 for column, v in zip(frame.columns, record, strict=True)]
        rows.append("<tr>" + "".join(
            f'<td class="{"nd" if c == NO_DATA else ""}">{e(c)}</td>' for c in cells) + "</tr>")
    return f'<table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _table_html(table: Table) -> str:
    """The table in parts that fit a printed page: the first column (the row's name) repeated in each part of at most
    MAX_TABLE_COLUMNS others, at most MAX_TABLE_ROWS rows; every row and column is in the linked CSV."""
    frame = table.frame
    banner = '<p class="illustrative">ILLUSTRATIVE data: not official figures.</p>' if table.illustrative else ""
    link = f'<a href="{html.escape(table.filename)}">{html.escape(table.filename)}</a>'
    if frame.empty:
        return f"<figure>{banner}<p>Aucune ligne.</p><figcaption>{html.escape(table.caption)} ({link})</figcaption>" \
               "</figure>"
    if "zone_name" in frame.columns:  # the row's name first, repeated in every part
        frame = frame[["zone_name", *[c for c in frame.columns if c != "zone_name"]]]
    if len(frame) <= MAX_TRANSPOSED_ROWS and len(frame.columns) > MAX_TABLE_COLUMNS + 1:
        # few rows, many columns: one row per figure, one column per zone
        names = [str(v) for v in frame[frame.columns[0]]]
        body = "".join(
            f'<tr><th scope="row" title="{html.escape(str(c))}">{html.escape(column_label(str(c)))}</th>'
            + "".join(f'<td class="{"nd" if _cell(v) == NO_DATA else ""}">{html.escape(_cell(v))}</td>'
                      for v in frame[c]) + "</tr>" for c in frame.columns[1:])
        head = "".join(f'<th scope="col">{html.escape(n)}</th>' for n in names)
        return (f'<figure class="table">{banner}<table class="transposed"><thead><tr><th></th>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table><figcaption>{html.escape(table.caption)} — une colonne par zone "
                f"({link})</figcaption></figure>")
    key, others = frame.columns[0], list(frame.columns[1:])
    chunks = [others[i:i + MAX_TABLE_COLUMNS] for i in range(0, len(others), MAX_TABLE_COLUMNS)] or [[]]
    shown = frame.head(MAX_TABLE_ROWS)
    parts = [_html_table(shown[[key, *chunk]]) for chunk in chunks]
    more = []
    if len(frame) > len(shown):
        more.append(f"{len(shown)} lignes sur {len(frame)}")
    if len(chunks) > 1:
        more.append(f"{len(frame.columns)} colonnes en {len(chunks)} parties")
    extra = f" — {', '.join(more)} ; tout est dans le CSV" if more else ""
    return (f'<figure class="table">{banner}{"".join(parts)}<figcaption>{html.escape(table.caption)}{extra} '
            f"({link})</figcaption></figure>")


STYLE = """body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222;
line-height:1.4}h1{font-size:1.6em}h2{border-bottom:2px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.8em;margin:.4em 0;max-width:100%}
td,th{border-bottom:1px solid #ddd;padding:2px 6px;text-align:right}th{vertical-align:bottom}
table.transposed th[scope=row]{text-align:left;font-weight:normal;color:#444}
td:first-child,th:first-child{text-align:left}td.nd{color:#777;font-style:italic}
figure{margin:1em 0}figure.table{overflow-x:auto}img{max-width:100%;height:auto}
figcaption{font-size:.9em;color:#444}.illustrative{background:#fee;border:1px solid #c00;padding:4px}
.note,.method{color:#555;font-size:.9em}
@media print{body{max-width:none;margin:0}section{break-before:page}figure,tr{break-inside:avoid}
a{color:inherit;text-decoration:none}}"""


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
                write_csv(frame, safe_join(staging, table.filename, what="table file"))
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
