"""Bad input through the command line: one line naming the problem, exit code 2, no traceback."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pystac
import pytest

from geovigie.models import DEFAULT_BUNDLE, NETWORK_BUNDLE
from tests._support.cli import GEOVIGIE, assert_clean_error, run
from tests.conftest import DATA, SLOVENIA_SCENE


def test_help() -> None:
    done = subprocess.run([GEOVIGIE, "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for command in ("catalog", "predict", "serve", "demo"):
        assert command in done.stdout


def test_missing_file(tmp_path: Path) -> None:
    assert_clean_error(run("predict", "nope.tif", "--out", "o", cwd=tmp_path), "nope.tif")
    assert not (tmp_path / "o").exists()


def test_band_mismatch(tmp_path: Path) -> None:
    red = next((DATA / "s2-l2a-theia-gers").glob("*_FRE_B4.tif"))
    assert_clean_error(run("predict", str(red), "--out", "o", cwd=tmp_path), red.name, "bands")


def test_raster_without_crs(tmp_path: Path) -> None:
    import rasterio

    with rasterio.open(SLOVENIA_SCENE) as src:
        profile, data = src.profile, src.read()
    profile.pop("crs")
    with rasterio.open(tmp_path / "nocrs.tif", "w", **profile) as dst:
        dst.write(data)
    assert_clean_error(run("predict", "nocrs.tif", "--out", "o", "--product-level", "L1C", cwd=tmp_path), "no CRS")


def test_catalog_errors(tmp_path: Path) -> None:
    assert run("catalog", "build", cwd=tmp_path).returncode == 0
    assert_clean_error(run("catalog", "search", "--collections", "sentinel-9", cwd=tmp_path), "sentinel-9")
    assert_clean_error(run("catalog", "search", "--bbox", "-60,-20,-59,-19", cwd=tmp_path), "no item")
    ok = run("catalog", "search", "--collections", "s2-l1c-slovenia", "--json", cwd=tmp_path)
    assert ok.returncode == 0 and ok.stdout.count('"type": "Feature"') == 4


@pytest.mark.slow
def test_predict_command_writes_outputs(tmp_path: Path) -> None:
    done = run("predict", str(SLOVENIA_SCENE), "--out", "o", "--product-level", "L1C", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "o").glob("*.tif"))) == 2
    # every output has a STAC item: predict publishes the class map as a layer of the results store
    (folder,) = (tmp_path / "geovigie-data/results/geovigie-results").glob("landcover-reference_scene_2-*")
    item_path = folder / f"{folder.name}.json"  # the file's layer: its stem and 8 hex digits of its content
    assert "STAC item:" in done.stderr and item_path.is_file()
    item = pystac.Item.from_file(str(item_path))
    assert item.properties["geovigie:model_bundle"].startswith("landcover-s2l1c-slovenia@")
    assert {"data", "probabilities", "model-card"} <= set(item.assets)
    again = run("predict", str(SLOVENIA_SCENE), "--out", "o", "--product-level", "L1C", cwd=tmp_path)
    assert "up to date" in again.stderr


@pytest.mark.slow
def test_diagnose_and_report_commands(tmp_path: Path) -> None:
    odeon = DATA / "odeon-change-labels-2016-2019"
    patch = "zone_v13_478208-0000_6275584-0000.tiff"
    import geopandas as gpd
    import rasterio
    from shapely.geometry import box

    with rasterio.open(odeon / "2016/naf" / patch) as src:
        gpd.GeoDataFrame({"zone_id": ["p"], "zone_name": ["patch"]}, geometry=[box(*src.bounds)],
                         crs=src.crs).to_file(tmp_path / "zones.geojson")
    done = run("diagnose", "zan", "--before", str(odeon / "2016/naf" / patch), "--after",
               str(odeon / "2019/naf" / patch), "--start", "2016-07-01", "--end", "2019-07-01",
               "--zones", "zones.geojson", "--place", "patch", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "zan-patch-2016-2019" in done.stderr
    table = (tmp_path / "geovigie-data/results/geovigie-results/zan-zones-patch-2016-2019/zones.csv").read_text()
    assert "artificialised_ha_no_mmu" in table
    report = run("report", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "land take" in (tmp_path / "geovigie-data/report/index.html").read_text()
    assert_clean_error(run("diagnose", "zan", "--before", str(odeon / "2016/naf" / patch), "--after",
                           str(odeon / "2019/naf" / patch), "--start", "2016-07-01", "--end", "2019-07-01",
                           "--zones", "zones.geojson", "--mapping", "landcover-s2l1c-slovenia", cwd=tmp_path),
                       "not in the ZAN mapping")
    assert_clean_error(run("diagnose", "zan", "--before", "x.tif", "--after", "y.tif", "--start", "2016-07-01",
                           "--end", "2019-07-01", "--zones", "missing.geojson", cwd=tmp_path), "missing.geojson")


# --- conventions (issue 20): version, -h everywhere, choices, plain text off a terminal, warnings, tables, ports ---

PLACEHOLDERS = ("<bool>", "<str>", "<int>", "<float>", "<path>")


def _commands() -> list[list[str]]:
    """The path of every command and group of the app: [], ["catalog"], ["catalog", "search"]..."""
    import typer.main

    from geovigie.cli import app

    found: list[list[str]] = []

    def walk(command, path: list[str]) -> None:  # noqa: ANN001 - a click command
        found.append(path)
        for name, child in getattr(command, "commands", {}).items():
            if not getattr(child, "hidden", False):
                walk(child, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def test_version() -> None:
    from importlib.metadata import version

    for flag in ("--version", "-V"):
        done = subprocess.run([GEOVIGIE, flag], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"geovigie {version('geovigie')}\n"


def test_every_command_has_short_help_without_placeholders() -> None:
    from typer.testing import CliRunner

    from geovigie.cli import app

    commands = _commands()
    assert len(commands) > 25 and ["diagnose", "zan"] in commands and ["jobs", "worker"] in commands
    runner = CliRunner()
    for path in commands:
        for flag in ("-h", "--help"):
            done = runner.invoke(app, [*path, flag], prog_name="geovigie")
            assert done.exit_code == 0, (path, done.output)
            assert "Usage: geovigie" in done.output, path
            assert not [p for p in PLACEHOLDERS if p in done.output], (path, done.output)
            assert "╭" not in done.output and "\x1b[" not in done.output, path  # plain text off a terminal


def test_help_through_a_pipe_is_plain_and_lists_choices() -> None:
    mappings = sorted(p.stem for p in (Path(__file__).parents[1] / "diagnostics" / "zan_mappings").glob("*.toml"))
    assert len(mappings) >= 2
    zan = subprocess.run([GEOVIGIE, "diagnose", "zan", "-h"], capture_output=True, text=True, timeout=120)
    assert zan.returncode == 0 and "╭" not in zan.stdout and "\x1b[" not in zan.stdout
    flat = " ".join(zan.stdout.split())
    assert all(name in flat for name in mappings), flat
    assert "--mapping NAME|FILE" in flat
    dumps = " ".join(subprocess.run([GEOVIGIE, "diagnose", "dumps", "-h"], capture_output=True, text=True,
                                    timeout=120).stdout.split())
    assert "0-250 for a probability of 0-100 %" in dumps and "value / 250" not in dumps
    predict = " ".join(subprocess.run([GEOVIGIE, "predict", "-h"], capture_output=True, text=True,
                                      timeout=120).stdout.split())
    assert "--runtime auto|torch|onnx" in predict and "--device auto|cpu|cuda" in predict
    assert DEFAULT_BUNDLE.name in predict and NETWORK_BUNDLE.name in predict  # the shipped bundles
    search = " ".join(subprocess.run([GEOVIGIE, "catalog", "search", "-h"], capture_output=True, text=True,
                                     timeout=120).stdout.split())
    assert "earth-search" in search and "planetary-computer" in search and "landsat-c2-l2" in search
    top = subprocess.run([GEOVIGIE, "-h"], capture_output=True, text=True, timeout=120).stdout
    assert "-v, --verbose" in top and "-q, --quiet" in top and "-V, --version" in top


@pytest.mark.slow
def test_piped_output_is_plain_one_line_warnings_fixed_tables(tmp_path: Path) -> None:
    import geopandas as gpd
    import rasterio
    from shapely.geometry import box

    odeon = DATA / "odeon-change-labels-2016-2019"
    patch = "zone_v13_478208-0000_6275584-0000.tiff"
    with rasterio.open(odeon / "2016/naf" / patch) as src:
        x0, y0, x1, y1 = src.bounds
        crs = src.crs
    zones = [box(x0, y0, (x0 + x1) / 2, y1), box((x0 + x1) / 2, y0, x1, y1), box(x1 + 100, y0, x1 + 500, y1)]
    gpd.GeoDataFrame({"zone_id": ["w", "e", "out"], "zone_name": ["west", "east", "outside"]}, geometry=zones,
                     crs=crs).to_file(tmp_path / "zones.geojson")
    done = run("diagnose", "zan", "--before", str(odeon / "2016/naf" / patch), "--after",
               str(odeon / "2019/naf" / patch), "--start", "2016-07-01", "--end", "2019-07-01",
               "--zones", "zones.geojson", "--place", "patch", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    warnings = [line for line in lines if line.startswith("warning: ")]
    assert len(warnings) == 1 and "no figure for some zones" in warnings[0] and "not covered: out" in warnings[0]
    assert "Warning:" not in done.stderr and ".py:" not in done.stderr  # no category, file, line or source line
    assert "\x1b[" not in done.stderr and "[/]" not in done.stderr and "│" not in done.stderr
    (header,) = [line for line in lines if line.startswith("zone id")]
    assert "artificialised (ha)" in header and "net (ha/yr)" in header
    rows = {line.split()[0]: line.split() for line in lines[lines.index(header) + 1:lines.index(header) + 4]}
    assert set(rows) == {"w", "e", "out"}
    assert rows["out"][2:] == ["-"] * (len(rows["out"]) - 2)  # no figure for the zone outside, not 0 or NaN
    figures = rows["w"][2:] + rows["e"][2:]
    assert all(re.fullmatch(r"-?\d+\.\d{4}", value) for value in figures), figures  # fixed notation, 4 decimals
    csv = pd.read_csv(tmp_path / "geovigie-data/results/geovigie-results/zan-zones-patch-2016-2019/zones.csv")
    west = csv.set_index("zone_id").loc["w"]
    assert rows["w"][2] == f"{west['artificialised_ha']:.4f}"  # the table shows the CSV's figure


def test_search_table_through_a_pipe(tmp_path: Path) -> None:
    assert run("catalog", "build", cwd=tmp_path).returncode == 0
    done = run("catalog", "search", "--collections", "s2-l1c-slovenia", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "4 items" and lines[1].split("  ")[0] == "collection"
    assert "cloud (%)" in lines[1] and "datetime (UTC)" in lines[1]
    assert len(lines) == 6 and all(line.startswith("s2-l1c-slovenia ") for line in lines[2:])
    assert not set("│┃━─╭") & set(done.stdout) and "…" not in done.stdout  # aligned text, nothing cut at 80 columns


def _listening_port() -> tuple[socket.socket, int]:
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    return taken, taken.getsockname()[1]


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_port_in_use_is_one_error_line_before_any_url(tmp_path: Path, command: str) -> None:
    taken, port = _listening_port()
    with taken:
        done = run(command, "--port", str(port), cwd=tmp_path)
    assert_clean_error(done, f"--port {port}", f"127.0.0.1:{port} is already in use")
    assert len(done.stderr.splitlines()) == 1 and "http://" not in done.stderr + done.stdout
    assert not (tmp_path / "geovigie-data").exists()  # the demo refused before any work


def test_serve_passes_the_log_level_to_uvicorn(tmp_path: Path) -> None:
    """-v: uvicorn logs at info (its startup line); by default (warning) it says nothing of its start."""
    for flags, says_start in (["-v"], True), ([], False):
        taken, port = _listening_port()
        taken.close()
        (tmp_path / "none.toml").touch()
        env = {"PATH": str(Path(sys.executable).parent), "GEOVIGIE_CONFIG": str(tmp_path / "none.toml"),
               "HOME": str(tmp_path), "GEOVIGIE_STAC_BACKEND": "static", "GEOVIGIE_SAMPLE_DATA_DIR": str(DATA)}
        server = subprocess.Popen([GEOVIGIE, *flags, "serve", "--port", str(port)], cwd=tmp_path, env=env,
                                  stderr=subprocess.PIPE, text=True)
        try:
            _wait_until_listening(port, server)
        finally:
            server.terminate()
            _, stderr = server.communicate(timeout=60)
        assert f"map: http://127.0.0.1:{port}/" in stderr
        assert ("Uvicorn running on" in stderr) is says_start, stderr


def _wait_until_listening(port: int, server: subprocess.Popen) -> None:
    import time

    for _ in range(600):
        assert server.poll() is None, "serve stopped"
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                time.sleep(0.5)  # let uvicorn write its startup lines
                return
        time.sleep(0.1)
    raise AssertionError("serve did not listen within 60 s")


def test_jobs_worker_gets_the_command_line_verbosity() -> None:
    from geovigie.terminal import set_verbosity, verbosity_flags

    try:
        assert [verbosity_flags() for n in (2, 1, 0, -1) if set_verbosity(n)] == [["-vv"], ["-v"], [], ["-q"]]
    finally:
        set_verbosity(0)
    # the worker's command line, as `serve` starts it, is one the CLI accepts
    done = subprocess.run([sys.executable, "-c", "from geovigie.cli import app; app()", "-vv", "jobs", "worker", "-h"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--until-empty" in done.stdout, done.stderr
