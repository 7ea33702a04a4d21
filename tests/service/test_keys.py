"""API keys: created, listed and revoked by the CLI, hashed at rest, required for writes (401 missing, 403 wrong or
revoked), optional or required for reads by configuration, rate-limited per key; and the SSRF guard of user URLs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from geovigie.cli import app as cli_app
from geovigie.service import create_app
from geovigie.url_guard import UnsafeUrlError, check_redirects, check_remote_url
from tests._support.writes import make_key, writes_settings

FEEDBACK = {"status": "confirmed", "comment": "vu sur place"}


@pytest.fixture
def settings(tmp_path: Path, pgstac_url: str):
    return writes_settings(tmp_path / "gv", pgstac_url)


def _cli(monkeypatch: pytest.MonkeyPatch, settings, *args: str):  # noqa: ANN202
    monkeypatch.setenv("GEOVIGIE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GEOVIGIE_STAC_BACKEND", "pgstac")
    monkeypatch.setenv("GEOVIGIE_DATABASE_URL", settings.database_url)
    return CliRunner().invoke(cli_app, list(args))


def test_keys_cli_creates_lists_and_revokes_and_stores_only_a_hash(settings, monkeypatch) -> None:
    created = _cli(monkeypatch, settings, "keys", "create", "--owner", "Service environnement")
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip().splitlines()[0]
    assert secret.startswith("gvk_") and len(secret) == 4 + 8 + 1 + 43
    key_id = secret.split("_")[1]
    listed = _cli(monkeypatch, settings, "keys", "list", "--json")
    assert key_id in listed.stdout and "Service environnement" in listed.stdout and secret not in listed.stdout
    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute("SELECT id, owner, sha256, scopes FROM geovigie.api_keys").fetchall()
        dump = str(conn.execute("SELECT row_to_json(k)::text FROM geovigie.api_keys k").fetchall())
    assert rows == [(key_id, "Service environnement", hashlib.sha256(secret.encode()).digest(), ["write"])]
    assert secret.split("_")[2] not in dump  # the secret part is nowhere at rest
    revoked = _cli(monkeypatch, settings, "keys", "revoke", key_id)
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert '"revoked": null' not in _cli(monkeypatch, settings, "keys", "list", "--json").stdout
    unknown = _cli(monkeypatch, settings, "keys", "revoke", "0badc0de")
    assert unknown.exit_code == 2 and "error: no API key '0badc0de'" in unknown.output
    bad_scope = _cli(monkeypatch, settings, "keys", "create", "--owner", "x", "--scope", "admin")
    assert bad_scope.exit_code == 2 and "scope 'admin'" in bad_scope.output


def test_writes_need_a_valid_unrevoked_write_key(settings) -> None:
    from geovigie.service.auth import create_key, revoke_key

    key, secret = create_key(settings, "Agent")
    reader = make_key(settings, "Lecteur", "read")
    with TestClient(create_app(settings)) as client:
        def post(headers: dict[str, str]) -> httpx.Response:
            return client.post("/sites/20240501-abc/feedback", json=FEEDBACK, headers=headers)

        missing = post({})
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert post({"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 401
        assert post({"X-API-Key": secret[:-1] + ("A" if secret[-1] != "A" else "B")}).status_code == 403
        assert post({"Authorization": "Bearer gvk_00000000_" + "A" * 43}).status_code == 403
        assert post({"X-API-Key": "not a key"}).status_code == 403
        assert post({"X-API-Key": reader}).status_code == 403  # a read key does not write
        # a good key passes the gate: the site does not exist (no pass published), so 404
        assert post({"Authorization": f"Bearer {secret}"}).status_code == 404
        assert post({"X-API-Key": secret}).status_code == 404
        revoke_key(settings, key.id)
        revoked = post({"X-API-Key": secret})
        assert revoked.status_code == 403 and "revoked" in revoked.json()["detail"]
        # reads stay public by default
        assert client.get("/layers").status_code == 200


def test_rate_limit_per_key_answers_429_with_retry_after(tmp_path: Path, pgstac_url: str) -> None:
    settings = writes_settings(tmp_path / "gv", pgstac_url, rate_limit_per_minute=3)
    first, second = make_key(settings, "A"), make_key(settings, "B")
    with TestClient(create_app(settings)) as client:
        codes = [client.post("/sites/x/feedback", json=FEEDBACK, headers={"X-API-Key": first}).status_code
                 for _ in range(4)]
        assert codes == [404, 404, 404, 429]
        limited = client.post("/sites/x/feedback", json=FEEDBACK, headers={"X-API-Key": first})
        assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 20
        # another key has its own bucket
        assert client.post("/sites/x/feedback", json=FEEDBACK, headers={"X-API-Key": second}).status_code == 404


def test_reads_can_require_a_key(tmp_path: Path, pgstac_url: str) -> None:
    settings = writes_settings(tmp_path / "gv", pgstac_url, read_requires_key=True)
    reader = make_key(settings, "Lecteur", "read")
    with TestClient(create_app(settings)) as client:
        assert client.get("/layers").status_code == 401
        assert client.get("/layers", headers={"X-API-Key": "gvk_00000000_" + "A" * 43}).status_code == 403
        assert client.get("/layers", headers={"X-API-Key": reader}).status_code == 200
        assert client.get("/api/stac/", headers={"Authorization": f"Bearer {reader}"}).status_code == 200
        # the page, its files and the probes stay open (the page asks for the key)
        assert client.get("/healthz").status_code == 200 and client.get("/").status_code == 200


def test_stac_transactions_need_a_write_key(tmp_path: Path, pgstac_url: str) -> None:
    settings = writes_settings(tmp_path / "gv", pgstac_url, stac_api_transactions=True)
    writer = make_key(settings, "Opérateur")
    collection = {"type": "Collection", "stac_version": "1.0.0", "id": "written-by-key", "description": "d",
                  "license": "CC-BY-4.0", "links": [],
                  "extent": {"spatial": {"bbox": [[0, 43, 1, 44]]}, "temporal": {"interval": [[None, None]]}}}
    with TestClient(create_app(settings)) as client:
        assert client.post("/api/stac/collections", json=collection).status_code == 401
        assert client.post("/api/stac/search", json={"limit": 1}).status_code == 200  # a read sent as POST
        assert client.get("/api/stac/collections/written-by-key").status_code == 404
        written = client.post("/api/stac/collections", json=collection, headers={"X-API-Key": writer})
        assert written.status_code in (200, 201), written.text
        assert client.get("/api/stac/collections/written-by-key").status_code == 200


class _Recorder(httpx.BaseTransport):
    """An httpx transport that records requests and answers from a table (no network)."""

    def __init__(self, answers: dict[str, httpx.Response]) -> None:
        self.answers, self.sent = answers, []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(str(request.url))
        return self.answers.get(str(request.url), httpx.Response(200, text="{}"))


PUBLIC = {"stac.example.org": ["93.184.215.14"], "evil.example.org": ["10.1.2.3", "93.184.215.14"],
          "rebind.example.org": ["2001:4860:4860::8888", "::ffff:127.0.0.1"]}


def _resolve(host: str) -> list[str]:
    return PUBLIC.get(host, ["127.0.0.1"])


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000/api/stac", "http://10.0.0.5/stac", "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:8000/", "http://172.16.3.4/", "http://192.168.1.1/", "http://100.64.0.1/", "http://0.0.0.0/",
    "http://[fe80::1]/", "http://[::ffff:127.0.0.1]/", "http://localhost:8000/",  # localhost resolves to 127.0.0.1
    "http://evil.example.org/stac",  # allow-listed, but one of its addresses is private
    "http://rebind.example.org/",  # an IPv4-mapped loopback among its addresses
    "http://other.example.com/stac",  # public but not allow-listed
    "file:///etc/passwd", "ftp://stac.example.org/", "http://user:pw@stac.example.org/",
])
def test_ssrf_guard_refuses_internal_unlisted_and_odd_urls_without_sending_anything(url: str) -> None:
    transport = _Recorder({})
    allow = ["stac.example.org", "*.example.org", "127.0.0.1", "localhost", "10.0.0.5", "169.254.169.254"]
    with pytest.raises(UnsafeUrlError):
        check_redirects(url, allow, resolve=_resolve, transport=transport)
    assert transport.sent == []


def test_ssrf_guard_follows_redirects_only_on_the_same_host() -> None:
    allow = ["stac.example.org"]
    assert check_remote_url("https://stac.example.org/api", allow, resolve=_resolve)
    same = _Recorder({"https://stac.example.org/api": httpx.Response(301, headers={"location": "/api/v1/"})})
    assert check_redirects("https://stac.example.org/api", allow, resolve=_resolve,
                           transport=same) == "https://stac.example.org/api/v1/"
    away = _Recorder({"https://stac.example.org/api": httpx.Response(
        302, headers={"location": "http://169.254.169.254/latest/meta-data/"})})
    with pytest.raises(UnsafeUrlError, match="redirects to another host"):
        check_redirects("https://stac.example.org/api", allow, resolve=_resolve, transport=away)
    assert away.sent == ["https://stac.example.org/api"]  # the metadata address was never asked
    loop = _Recorder({"https://stac.example.org/a": httpx.Response(302, headers={"location": "/a"})})
    with pytest.raises(UnsafeUrlError, match="more than 5 redirects"):
        check_redirects("https://stac.example.org/a", allow, resolve=_resolve, transport=loop)
