"""What the command line prints off a terminal: units in headers, fixed notation, cut lists that say so, no markup."""

from __future__ import annotations

import io
import logging
import warnings

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from geovigie.terminal import (
    column_header,
    configure_logging,
    fixed,
    frame_rows,
    listed,
    note,
    print_table,
    set_verbosity,
    show_warnings_as_lines,
)


def _plain() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, markup=False, highlight=False, soft_wrap=True), buffer


@pytest.mark.parametrize(("column", "header"), [
    ("artificialised_ha", "artificialised (ha)"), ("artificialised_ha_no_mmu", "artificialised no mmu (ha)"),
    ("net_ha_per_year", "net (ha/yr)"), ("zone_area_m2", "zone area (m²)"), ("volume_m3", "volume (m³)"),
    ("covered_fraction", "covered fraction (%)"), ("dense_vegetation_share", "dense vegetation share (%)"),
    ("zone_id", "zone id"), ("ha", "ha"),
])
def test_headers_carry_units(column: str, header: str) -> None:
    assert column_header(column) == header


def test_fixed_notation_never_scientific() -> None:
    assert fixed(1.2e-05, "ha") == "0.0000" and fixed(0.142638, "ha") == "0.1426"
    assert fixed(-1e-9, "ha") == "0.0000"  # no "-0.0000"
    assert fixed(123456789.123, "m²") == "123456789.1" and fixed(0.5, "%") == "50.0"
    assert fixed(np.float32(0.25)) == "0.250" and fixed(float("nan"), "ha") == "-" and fixed(pd.NA) == "-"
    assert fixed(None) == "-" and fixed("covered") == "covered"


def test_frame_rows_cut_and_count() -> None:
    frame = pd.DataFrame({"zone_id": [f"z{i}" for i in range(45)], "pixels": [float(i) for i in range(45)],
                          "net_ha": [1e-6 * i for i in range(45)]})
    headers, rows, more = frame_rows(frame, max_rows=40)
    assert headers == ["zone id", "pixels", "net (ha)"] and len(rows) == 40 and more == 5
    assert rows[3] == ["z3", "3", "0.0000"]  # whole numbers without decimals, figures at 4 decimals
    assert frame_rows(frame.head(40), max_rows=40)[2] == 0  # exactly the limit: nothing left out
    headers, rows, more = frame_rows(frame.head(0), ["zone_id", "missing"], max_rows=40)
    assert headers == ["zone id"] and rows == [] and more == 0


def test_listed_says_how_many_more() -> None:
    assert listed([]) == "" and listed(list("abc"), 3) == "a, b, c"
    assert listed(list(range(262)), 20).endswith("19 … and 242 more")


def test_plain_table_aligns_without_boxes_or_cuts() -> None:
    console, buffer = _plain()
    wide = "x" * 150
    print_table(console, ["name", "value (ha)"], [["a", "1.5000"], [wide, "-"]], title="t", more=3, more_what="zones")
    lines = buffer.getvalue().splitlines()
    assert lines[0] == "t" and lines[1].startswith("name") and lines[3].startswith(wide)
    assert lines[2].endswith("1.5000") and lines[3].endswith("     -") and lines[-1] == "… and 3 more zones"
    console, buffer = _plain()
    print_table(console, ["code", "mean"], [["32001", "0.5"], ["1", "12.25"]])  # codes left, figures right
    assert buffer.getvalue().splitlines() == ["code    mean", "32001    0.5", "1      12.25"]
    console, buffer = _plain()
    print_table(console, ["a"], [])  # an empty table is its header
    assert buffer.getvalue() == "a\n"


def test_note_prints_no_markup() -> None:
    console, buffer = _plain()
    note(console, "warning", "zone [b]x[/b]\nsecond line")
    assert buffer.getvalue() == "warning: zone [b]x[/b] second line\n"


def test_warnings_and_log_records_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    show_warnings_as_lines()
    try:
        set_verbosity(0)
        configure_logging()
        assert warnings.formatwarning(UserWarning("two\nlines"), UserWarning, "/x/y.py", 12) == "warning: two lines\n"
        logging.getLogger("terminal_test").info("not shown at the default level")
        logging.getLogger("terminal_test").warning("shown")
        set_verbosity(1)
        configure_logging()
        logging.getLogger("terminal_test").info("shown with -v")
    finally:
        set_verbosity(0)
        configure_logging()
        warnings.formatwarning = warnings._formatwarning_orig  # type: ignore[attr-defined]
    err = capsys.readouterr().err.splitlines()
    assert err == ["warning: shown", "info: terminal_test: shown with -v"]
