"""Mosaics' bad inputs: a `?datetime=` the tiler cannot read is a 400 naming the parameter; an item's asset that is
not a local file under the service's data folders is never opened (a URL, a relative path, a file elsewhere, a
`..` escape, a missing file). The HTTP side of both is in tests/service/test_mosaics.py (real Landsat passes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from titiler.core.errors import BadRequestError

from geovigie.errors import InputNotFoundError
from geovigie.service.mosaics import _local_asset, parse_datetime
from tests.conftest import DATA

LANDSAT = DATA / "landsat-lst-muenster" / "LC08_L2SP_196024_20240813_20240822_02_T1_ST_B10.TIF"


@pytest.mark.parametrize("value", ["yesterday", "2024-13-45", "2024-08-13T25:00:00Z", "2025-05-11/2024-08-13",
                                   "../..", "/", "2024-01-01/2024-02-01/2024-03-01", "2024-08-13" * 20,
                                   "2024-08-13T10:00:00Z; DROP TABLE items", "13/08/2024"])
def test_bad_datetimes_are_a_400_naming_the_parameter(value: str) -> None:
    with pytest.raises(BadRequestError, match=r"^datetime: "):
        parse_datetime(value)


def test_datetimes_read_as_days_instants_and_intervals() -> None:
    assert parse_datetime("2024-08-13") == "2024-08-13T00:00:00Z/2024-08-13T23:59:59.999999Z"  # the whole day
    assert parse_datetime("2024-08-13T10:00:00+02:00") == "2024-08-13T08:00:00Z"
    assert parse_datetime("2024-08-13T10:00:00") == "2024-08-13T10:00:00Z"  # no zone: UTC
    assert parse_datetime("../2024-08-13") == "../2024-08-13T23:59:59.999999Z"
    assert parse_datetime("2024-08-13/..") == "2024-08-13T00:00:00Z/.."
    assert parse_datetime("2024-08-13/2024-08-13") == "2024-08-13T00:00:00Z/2024-08-13T23:59:59.999999Z"


def test_only_local_files_under_the_roots_are_read(tmp_path: Path) -> None:
    roots = (DATA.resolve(),)
    assert _local_asset(str(LANDSAT), roots) == str(LANDSAT.resolve())
    assert _local_asset(LANDSAT.resolve().as_uri(), roots) == str(LANDSAT.resolve())
    outside = tmp_path / "elsewhere.tif"
    outside.write_bytes(LANDSAT.read_bytes())
    link = DATA / "landsat-lst-muenster" / ".." / ".." / "pyproject.toml"
    for href in (str(outside), outside.as_uri(), "/etc/hostname", "file:///etc/hostname", "../data.tif",
                 "data.tif", "http://169.254.169.254/latest/meta-data", "https://example.org/a.tif",
                 "/vsicurl/http://127.0.0.1/a.tif", str(link), str(DATA / "missing.tif")):
        with pytest.raises(InputNotFoundError, match="not a"):
            _local_asset(href, roots)
