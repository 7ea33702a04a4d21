"""The one HTTP policy of geovigie: one client factory (httpx), one retry policy (tenacity), one failure classifier.

Every remote call (STAC API searches through pystac-client, asset downloads into the cache, WMS GetCapabilities
and GetMap) goes through here:

- `http_client`: an `httpx.Client` with the timeout of the settings (`Settings.http_timeout`, environment variable
  `GEOVIGIE_HTTP_TIMEOUT`), redirects followed up to `MAX_REDIRECTS`, one User-Agent.
- `RetryPolicy` / `call` / `send`: connection errors, timeouts, dropped connections and the statuses of
  `RETRY_STATUSES` are retried `retries` times, `backoff` seconds before the first retry and twice as long each
  time, or as long as the server's `Retry-After` asks (at most `MAX_RETRY_AFTER`).
- `describe_failure` / `describe_status`: what went wrong, in words, for the one-line error the caller raises.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
"""Answers worth asking again: too many requests, and a gateway or server that is (for now) unavailable. Other
errors (400, 403, 404, 500...) say something a second try will not change."""
MAX_REDIRECTS = 10
MAX_RETRY_AFTER = 60.0
"""Seconds: a longer `Retry-After` is capped to this."""
USER_AGENT = "geovigie (+https://github.com/geovigie)"
DEFAULT_TIMEOUT = 30.0


class RetryableError(Exception):
    """A failure worth another try: `reason` in words, `retry_after` the seconds the server asked to wait."""

    def __init__(self, reason: str, retry_after: float = 0.0, response: Any = None) -> None:
        super().__init__(reason)
        self.reason, self.retry_after, self.response = reason, retry_after, response


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry (`retries`, after the first try) and how long to wait before the first retry
    (`backoff` seconds, doubled each time; a longer `Retry-After` wins)."""

    retries: int = 3
    backoff: float = 0.5

    def wait(self, attempt: int, retry_after: float = 0.0) -> float:
        """Seconds to wait after the `attempt`-th failed try (1-based)."""
        return max(self.backoff * 2 ** (attempt - 1), min(retry_after, MAX_RETRY_AFTER))


def resolve_timeout(timeout: float | None = None) -> float:
    """The seconds remote calls wait: the settings' `http_timeout` when it is configured (geovigie.toml or
    `GEOVIGIE_HTTP_TIMEOUT`), else `timeout`, else the settings' default.

    Raises:
        ValidationError: the configured value is not a positive number (the CLI names the setting).
    """
    from geovigie.settings import get_settings

    settings = get_settings()
    if "http_timeout" in settings.model_fields_set or timeout is None:
        return float(settings.http_timeout)
    return float(timeout)


def http_client(timeout: float | None = None, *, transport: Any = None, **options: Any) -> httpx.Client:
    """The one way geovigie opens HTTP connections (`resolve_timeout` seconds to connect and between reads)."""
    import httpx

    seconds = resolve_timeout(timeout)
    return httpx.Client(timeout=httpx.Timeout(seconds, connect=min(10.0, seconds)), follow_redirects=True,
                        max_redirects=MAX_REDIRECTS, transport=transport, headers={"User-Agent": USER_AGENT},
                        **options)


def is_transient(error: BaseException) -> bool:
    """Whether a failure is worth another try: `RetryableError`, or a connection that failed, timed out or dropped."""
    import httpx

    if isinstance(error, RetryableError):
        return True
    if isinstance(error, httpx.TooManyRedirects | httpx.UnsupportedProtocol | httpx.InvalidURL):
        return False
    return isinstance(error, httpx.TransportError)


def call(attempt: Callable[[], T], policy: RetryPolicy) -> T:
    """`attempt()`, tried again on transient failures (`is_transient`) as `policy` says; the last failure is
    raised as it came."""
    import tenacity

    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        return policy.wait(state.attempt_number, getattr(error, "retry_after", 0.0))

    retrying = tenacity.Retrying(stop=tenacity.stop_after_attempt(policy.retries + 1), wait=wait,
                                 retry=tenacity.retry_if_exception(is_transient), reraise=True)
    return retrying(attempt)


def retry_after(response: httpx.Response) -> float:
    """The seconds a `Retry-After` header asks for (0 when absent or an HTTP date)."""
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return 0.0


def send(client: httpx.Client, method: str, url: str, policy: RetryPolicy, **kwargs: Any) -> httpx.Response:
    """One request under `policy`: statuses of `RETRY_STATUSES` and transient failures are retried; the last
    answer is returned whatever its status (the caller words it), a transport failure raised after the retries."""
    def attempt() -> httpx.Response:
        response = client.request(method, url, **kwargs)
        if response.status_code in RETRY_STATUSES:
            raise RetryableError(f"HTTP {response.status_code}", retry_after(response), response)
        return response

    try:
        return call(attempt, policy)
    except RetryableError as last:
        return last.response


def _chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    return chain


def describe_failure(error: BaseException, timeout: float | None = None) -> str | None:
    """What a failed remote call ran into, in words, from the chain of exceptions; None when nothing in the chain
    is a transport or decoding failure (the caller knows better)."""
    import httpx

    chain = _chain(error)

    def find(*kinds: type[BaseException]) -> BaseException | None:
        return next((e for e in chain if isinstance(e, kinds)), None)

    if isinstance(retryable := find(RetryableError), RetryableError):
        return retryable.reason
    if find(httpx.TooManyRedirects):
        return f"more than {MAX_REDIRECTS} redirects (a redirect loop?)"
    if find(ConnectionRefusedError) or any("refused" in str(e).lower() for e in chain if
                                           isinstance(e, httpx.ConnectError)):
        return "connection refused: nothing listens at this address"
    if find(socket.gaierror):
        return "unknown host name"
    if find(httpx.TimeoutException, TimeoutError):
        return f"no answer within {timeout:g} s" if timeout else "no answer in time"
    if find(httpx.RemoteProtocolError, ConnectionResetError):
        return "the server closed the connection without answering in full"
    if connection := find(httpx.TransportError):
        return f"cannot connect ({str(chain[-1]) or type(connection).__name__})"
    if find(UnicodeDecodeError):
        return "the answer is not UTF-8 text (binary data, not JSON)"
    if isinstance(decode := find(json.JSONDecodeError), json.JSONDecodeError):
        if decode.doc.lstrip()[:1] == "<":
            return "answered an HTML page, not JSON"
        return f"the answer is not JSON ({decode.msg})"
    return None


def describe_status(status: int, body: str = "", context: str = "") -> str:
    """An HTTP error status in words: `HTTP 404 (not found: ...) on <context>: <start of the body>`."""
    hints = {
        401: "unauthorised: credentials are missing or wrong",
        403: "forbidden: an expired or missing signature? Planetary Computer URLs must be re-signed after their "
             "token expires: search again",
        404: "not found: the item may point to a moved or deleted file",
        429: "too many requests: the server asks to slow down",
    }
    text = " ".join(body.split())[:160]
    hint = f" ({hints[status]})" if status in hints else ""
    return f"HTTP {status}{hint}" + (f" on {context}" if context else "") + (f": {text}" if text else "")
