"""The HTML report as people read it: rendered in headless Chromium at 1280 px on the demo run (no horizontal
overflow, readable images, captions naming scenes and dates, no external URL), tick labels that never overlap, wide
tables split, missing figures written « pas de données »."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geovigie.diagnostics import Report, Section, Table, bar_chart_png
from geovigie.diagnostics import _report_page as page_module
from geovigie.diagnostics._report_page import MAX_TABLE_COLUMNS, french_number, render_html
from tests.conftest import require

CHROMIUM = "/usr/bin/chromium"


def test_french_numbers() -> None:
    assert french_number(1612.75) == "1\u202f612,75"
    assert french_number(0.5) == "0,5" and french_number(32158401.0, 0) == "32\u202f158\u202f401"
    assert french_number(-4.0, 1) == "-4"


def test_wide_table_is_split_with_its_row_names_and_nulls_say_no_data() -> None:
    names = ["Aignan", "Sabazan", *[f"zone {i}" for i in range(8)]]
    frame = pd.DataFrame({"zone_id": [str(32000 + i) for i in range(10)], "zone_name": names,
                          **{f"col_{i}": [float(i)] + [np.nan] + [1.5] * 8 for i in range(20)}})
    html = render_html(Report("t", "Gers", "2018", [Section("s", "", tables=[Table(frame, "c", "c.csv")])], []))
    tables = re.findall(r"<table>.*?</table>", html)
    assert len(tables) == -(-21 // MAX_TABLE_COLUMNS) == 3
    assert all(len(re.findall(r"<th ", t)) <= MAX_TABLE_COLUMNS + 1 and "Aignan" in t for t in tables)
    assert html.count("pas de données") == 20  # Sabazan's 20 missing figures, never 0
    assert "22 colonnes en 3 parties" in html


def test_few_rows_many_columns_are_transposed() -> None:
    frame = pd.DataFrame({"zone_name": ["patch 1", "patch 2"], **{f"col_{i}": [1612.75, np.nan] for i in range(12)}})
    html = render_html(Report("t", "Gers", "2018", [Section("s", "", tables=[Table(frame, "c", "c.csv")])], []))
    assert html.count('<th scope="row"') == 12 and "1\u202f612,75" in html and html.count("pas de données") == 12


def test_bar_chart_with_a_missing_zone_and_many_ticks_has_no_overlapping_labels(monkeypatch) -> None:
    overlaps: list[int] = []
    declutter = page_module._declutter_ticks

    def checked(figure: object) -> None:
        declutter(figure)
        figure.canvas.draw()  # type: ignore[attr-defined]
        overlaps.append(page_module._overlapping_ticks(figure))

    monkeypatch.setattr(page_module, "_declutter_ticks", checked)
    frame = pd.DataFrame({"zone": ["a", "b", "c"], "value": [462000.0, np.nan, 463123.0]})
    png = bar_chart_png(frame, "zone", ["value"], title="t", unit="m")
    assert png.startswith(b"\x89PNG") and overlaps == [0]


@pytest.fixture(scope="module")
def demo_report(demo_run, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    """The demo's report written again, every figure's tick labels checked for overlaps as it is saved."""
    from geovigie.workflows import report

    settings, _ = demo_run
    overlaps: list[int] = []
    declutter = page_module._declutter_ticks

    def checked(figure: object) -> None:
        declutter(figure)
        figure.canvas.draw()  # type: ignore[attr-defined]
        overlaps.append(page_module._overlapping_ticks(figure))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(page_module, "_declutter_ticks", checked)
        page = report(settings, tmp_path_factory.mktemp("report") / "report", title="Diagnostic", territory="Gers")
    return page, overlaps


def test_demo_report_reads_well_in_chromium_at_1280_px(demo_report) -> None:
    page, overlaps = demo_report
    text = page.read_text(encoding="utf-8")
    assert overlaps and max(overlaps) == 0  # every chart and map: no tick label over another
    assert not re.search(r"(src|href)=\"(https?:)?//", text) and "<script" not in text  # self-contained
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", text)
    assert not any("lst_celsius" in c for c in captions)
    assert any("LC08_L2SP_196024_20240813" in c and "2024-08-13" in c for c in captions)  # the Landsat scene
    assert any("SENTINEL2" in c and "2018-10-23" in c for c in captions)
    assert "Sites par statut à chaque passage" in text and "Volume au-dessus du terrain" in text  # dump charts
    require(Path(CHROMIUM).exists(), f"{CHROMIUM} not installed (apt install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
        view = browser.new_page(viewport={"width": 1280, "height": 900})
        view.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        view.on("request", lambda r: errors.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
        view.goto(page.as_uri())
        width = view.evaluate("() => document.documentElement.scrollWidth")
        images = view.eval_on_selector_all(
            "img", "is => is.map(i => [i.naturalWidth, i.getBoundingClientRect().width])")
        if os.environ.get("MAP_SCREENSHOTS"):
            view.screenshot(path=str(Path(os.environ["MAP_SCREENSHOTS"]) / "report.png"), full_page=True)
        browser.close()
    assert errors == []
    assert width <= 1280
    assert len(images) >= 8 and min(min(i) for i in images) > 100
