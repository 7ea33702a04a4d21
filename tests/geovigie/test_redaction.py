"""Credentials never reach an `error:` line or a log record (issue 16, item 4)."""

from __future__ import annotations

import logging

import pytest
import typer

from geovigie.cli import friendly_errors
from geovigie.errors import DatabaseError, InvalidInputError
from geovigie.redaction import install_log_redaction, redact

SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize(("text", "kept"), [
    (f"cannot reach postgresql://geo:{SECRET}@db.example:5432/gv", "cannot reach postgresql://geo:***@db.example:5432/gv"),
    (f"postgres://geo:{SECRET}@/gv?host=/run/pg", "postgres://geo:***@/gv?host=/run/pg"),
    (f"GET https://h.example/a.tif?X-Amz-Credential=AKIA{SECRET}&X-Amz-Signature={SECRET}&b=1",
     "GET https://h.example/a.tif?X-Amz-Credential=***&X-Amz-Signature=***&b=1"),
    (f"https://h.example/tile?access_token={SECRET}", "https://h.example/tile?access_token=***"),
    (f"blob?sv=2021&sig={SECRET}", "blob?sv=2021&sig=***"),
    (f"host=db.example user=geo password={SECRET} dbname=gv", "host=db.example user=geo password=*** dbname=gv"),
    (f"password = '{SECRET} with space'", "password = ***"),
    (f"Authorization: Bearer {SECRET}xyz", "Authorization: Bearer ***"),
    (f"https://{SECRET}{SECRET}@github.example/repo.git", "https://***@github.example/repo.git"),
])
def test_secrets_are_masked(text: str, kept: str) -> None:
    assert redact(text) == kept
    assert SECRET not in redact(text)


@pytest.mark.parametrize("text", [
    "",
    "postgresql://postgres@/geovigie?host=/tmp/gv/postgres/run&port=5432",  # a user name is no secret
    "invalid layer id 'a/b': use letters, digits, '-' and '_'",
    "band B04 missing in /data/scene.tif (EPSG:2154)",
    "https://data.geopf.fr/wmts?SERVICE=WMTS&LAYER=ORTHOIMAGERY.ORTHOPHOTOS&TILEMATRIX=12",
])
def test_plain_messages_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_the_error_line_of_the_cli_is_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    @friendly_errors
    def command() -> None:
        raise DatabaseError(f"cannot connect to postgresql://geo:{SECRET}@127.0.0.1:1/gv: connection refused")

    with pytest.raises(typer.Exit) as exit_info:
        command()
    printed = capsys.readouterr().err
    assert exit_info.value.exit_code == 2
    assert printed.startswith("error: cannot connect to postgresql://geo:***@127.0.0.1:1/gv")
    assert SECRET not in printed and printed.count("\n") == 1


def test_the_database_url_setting_is_redacted_in_db_commands(monkeypatch: pytest.MonkeyPatch, tmp_path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from typer.testing import CliRunner

    from geovigie.cli import app

    monkeypatch.setenv("GEOVIGIE_DATABASE_URL", f"postgresql://geo:{SECRET}@127.0.0.1:1/gv")
    monkeypatch.setenv("GEOVIGIE_DATA_DIR", str(tmp_path / "gv"))
    result = CliRunner().invoke(app, ["db", "status"])
    assert result.exit_code == 2
    assert "postgresql://geo:***@127.0.0.1:1/gv" in result.output and SECRET not in result.output
    assert not (tmp_path / "gv").exists()


def test_log_records_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction()
    logger = logging.getLogger("geovigie.test")
    with caplog.at_level(logging.WARNING):
        logger.warning("retrying %s", f"https://h.example/a.tif?token={SECRET}")
        try:
            raise InvalidInputError(f"bad url postgresql://u:{SECRET}@h/db")
        except InvalidInputError:
            logger.exception("failed")
    assert "https://h.example/a.tif?token=***" in caplog.records[0].getMessage()
    assert all(SECRET not in record.getMessage() for record in caplog.records)
    assert SECRET not in caplog.text
