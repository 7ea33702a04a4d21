"""Bad command-line input (options, ports, hosts): one line naming the problem, exit code 2, nothing started."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests._support.cli import GEOVIGIE, assert_clean_error, run


def test_port_in_use_names_the_option_and_the_port(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run("serve", "--host", "127.0.0.1", "--port", str(port), cwd=tmp_path)
    assert_clean_error(done, f"error: --port {port}: 127.0.0.1:{port} is already in use", "--port")
    assert done.stderr.count("\n") == 1 and "map:" not in done.stderr and "Errno" not in done.stderr


def test_host_that_is_not_this_machine(tmp_path: Path) -> None:
    done = run("serve", "--host", "203.0.113.7", "--port", "8123", cwd=tmp_path)  # TEST-NET-3: no machine has it
    assert_clean_error(done, "--host 203.0.113.7: not an address of this machine")
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize(("args", "needle"), [
    (["serve", "--port", "70000"], "'--port'"),
    (["serve", "--port", "0"], "'--port'"),
    (["demo", "--port", "-1"], "'--port'"),
    (["predict", "-x"], "No such option: -x"),
    (["-v", "nope"], "No such command 'nope'"),
])
def test_usage_errors_are_plain_and_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    done = run(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert needle in done.stderr and "Traceback" not in done.stderr
    assert "╭" not in done.stderr and "\x1b[" not in done.stderr  # off a terminal: no box, no colour
    assert not (tmp_path / "geovigie-data").exists()


def test_unknown_zan_mapping_lists_the_shipped_ones(tmp_path: Path) -> None:
    from tests.conftest import DATA

    patch = DATA / "odeon-change-labels-2016-2019/2016/naf/zone_v13_478208-0000_6275584-0000.tiff"
    zones = DATA / "s2-l2a-theia-gers/COMMUNE_32xxx.geojson"
    done = run("diagnose", "zan", "--before", str(patch), "--after", str(patch), "--start", "2016-07-01", "--end",
               "2019-07-01", "--zones", str(zones), "--mapping", "nope", cwd=tmp_path)
    assert_clean_error(done, "'nope'", "odeon-naf", "odeon-urbain")


def test_version_wins_over_a_command() -> None:
    done = subprocess.run([GEOVIGIE, "-V", "predict"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("geovigie ") and not done.stderr
