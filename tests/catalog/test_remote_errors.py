"""Remote STAC APIs that misbehave: each failure is one clear `RemoteSourceError` naming the URL and the problem.

Real HTTP servers on 127.0.0.1 (http.server in a thread) refuse, time out, loop, fail or answer non-STAC bytes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from geovigie.catalog.stac import ApiItemSource, CatalogClient
from geovigie.errors import RemoteSourceError
from geovigie.settings import Settings
from tests._support.remote import misbehaving_server
from tests._support.servers import closed_port_url

REMOTE_CASES = {
    "html": ("html", "HTML page"),
    "error500": ("error500", "HTTP 500"),
    "garbage": ("garbage", "not UTF-8"),
    "notstac": ("notstac", "not a STAC"),
    "loop": ("loop", "redirect"),
    "slow": ("slow", "no answer within 2 s"),
}
"""Endpoint of the misbehaving server -> (path, words the error must contain)."""


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, dict[str, int]]]:
    with misbehaving_server() as running:
        yield running


def _open(url: str) -> ApiItemSource:
    return ApiItemSource(url, timeout=2.0, retries=2, backoff=0.05)


@pytest.mark.parametrize("case", sorted(REMOTE_CASES))
def test_each_failure_is_one_clear_error(server: tuple[str, dict[str, int]], case: str) -> None:
    base, _ = server
    path, words = REMOTE_CASES[case]
    url = f"{base}/{path}/"
    started = time.perf_counter()
    with pytest.raises(RemoteSourceError) as caught:
        _open(url)
    message = str(caught.value)
    assert url in message and words in message, message
    assert "\n" not in message
    assert time.perf_counter() - started < 10  # the 2 s timeout holds, the retries are bounded


def test_closed_port_is_retried_then_reported() -> None:
    url = closed_port_url()
    with pytest.raises(RemoteSourceError, match="connection refused") as caught:
        _open(url)
    assert url in str(caught.value)


def test_gateway_errors_are_retried_a_bounded_number_of_times(server: tuple[str, dict[str, int]]) -> None:
    base, hits = server
    before = hits.get("error502", 0)
    with pytest.raises(RemoteSourceError, match="HTTP 502"):
        ApiItemSource(f"{base}/error502/", timeout=2.0, retries=3, backoff=0.05)
    assert hits["error502"] - before == 4  # the first try and 3 retries, no more
    before = hits.get("error500", 0)
    with pytest.raises(RemoteSourceError, match="HTTP 500"):
        ApiItemSource(f"{base}/error500/", timeout=2.0, retries=3, backoff=0.05)
    assert hits["error500"] - before == 1  # a server bug: asking again changes nothing


def test_retry_after_is_honoured(server: tuple[str, dict[str, int]]) -> None:
    base, hits = server
    started = time.perf_counter()
    with pytest.raises(RemoteSourceError, match="HTTP 429 \\(too many requests"):
        ApiItemSource(f"{base}/busy/", timeout=2.0, retries=1, backoff=0.01)
    assert hits["busy"] == 2 and time.perf_counter() - started >= 1.0  # waited the second the server asked for


def test_transient_503_is_retried_until_it_answers(server: tuple[str, dict[str, int]]) -> None:
    base, hits = server
    source = ApiItemSource(f"{base}/flaky/", timeout=2.0, retries=3, backoff=0.05)
    assert hits["flaky"] == 3  # two 503, then the landing page
    assert source.collection_ids() == []


def test_search_errors_are_mapped_too(server: tuple[str, dict[str, int]]) -> None:
    """A landing page that answers, then a search endpoint that fails: the error names the search URL."""
    base, _ = server
    client = CatalogClient(ApiItemSource(f"{base}/flaky/", timeout=2.0, retries=0))
    with pytest.raises(RemoteSourceError, match="404"):
        client.search(max_items=3).item_list()


def test_timeout_comes_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from geovigie.http import http_client, resolve_timeout
    from geovigie.inference._source import http_env  # GDAL's options for remote rasters

    assert resolve_timeout(12.0) == 12.0 and resolve_timeout(None) == Settings().http_timeout == 30.0
    monkeypatch.setenv("GEOVIGIE_HTTP_TIMEOUT", "2.5")
    assert Settings().http_timeout == 2.5 and resolve_timeout(12.0) == 2.5  # configured: it wins over code defaults
    assert http_env()["GDAL_HTTP_TIMEOUT"] == 3 and http_env()["GDAL_HTTP_CONNECTTIMEOUT"] == 3  # whole seconds
    with http_client(60.0) as client:
        assert client.timeout.read == 2.5
    monkeypatch.setenv("GEOVIGIE_HTTP_TIMEOUT", "soon")
    with pytest.raises(ValidationError, match="http_timeout"):
        resolve_timeout(30.0)
    monkeypatch.delenv("GEOVIGIE_HTTP_TIMEOUT")
    assert http_env()["GDAL_HTTP_TIMEOUT"] == 30 and http_env()["GDAL_HTTP_CONNECTTIMEOUT"] == 10  # the default
