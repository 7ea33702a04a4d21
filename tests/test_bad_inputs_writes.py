"""Bad inputs of `geovigie keys` and `geovigie jobs worker`: one `error:` line naming the problem, exit code 2, no
traceback, nothing written (no key created, no job touched)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from geovigie.cli import app


def _cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *args: str, **env: str):  # noqa: ANN202
    monkeypatch.setenv("GEOVIGIE_DATA_DIR", str(tmp_path / "gv"))
    for name, value in env.items():
        monkeypatch.setenv(f"GEOVIGIE_{name.upper()}", value)
    return CliRunner().invoke(app, list(args))


def _one_error_line(result) -> str:  # noqa: ANN001
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def _keys(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('geovigie.api_keys')").fetchone()
        return conn.execute("SELECT id, owner FROM geovigie.api_keys").fetchall() if exists[0] else []


@pytest.mark.parametrize(("args", "message"), [
    (("keys", "create", "--owner", "  "), "key owner: give a name"),
    (("keys", "create", "--owner", "x" * 201), "key owner: give a name"),
    (("keys", "create", "--owner", "Agent", "--scope", "admin"), "key scope 'admin': use one of read, write"),
    (("keys", "revoke", "0badc0de"), "no API key '0badc0de'"),
])
def test_bad_key_commands(monkeypatch, tmp_path: Path, pgstac_url: str, args: tuple[str, ...], message: str) -> None:
    result = _cli(monkeypatch, tmp_path, *args, stac_backend="pgstac", database_url=pgstac_url)
    assert message in _one_error_line(result)
    assert _keys(pgstac_url) == []


@pytest.mark.parametrize("args", [("keys", "list"), ("keys", "create", "--owner", "Agent"),
                                  ("jobs", "worker", "--until-empty")])
def test_keys_and_jobs_without_postgresql_say_what_is_needed(monkeypatch, tmp_path: Path, args) -> None:
    result = _cli(monkeypatch, tmp_path, *args, stac_backend="static")
    assert "need PostgreSQL" in _one_error_line(result)
    assert not (tmp_path / "gv" / "postgres").exists()


def test_unreachable_database_is_one_line(monkeypatch, tmp_path: Path) -> None:
    socket_dir = tmp_path / "nothing-listens-here"
    socket_dir.mkdir()
    result = _cli(monkeypatch, tmp_path, "keys", "list", stac_backend="pgstac",
                  database_url=f"postgresql://postgres@/geovigie?host={socket_dir}&port=5432")
    assert "postgresql://postgres@/geovigie" in _one_error_line(result)
