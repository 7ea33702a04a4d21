"""A local cache of downloaded assets, shared by every command: keyed by URL, checksummed, resumable.

Layout under the cache folder (default `DATA_DIR/cache`): `<h[:2]>/<h><ext>` holds the bytes of the URL whose
SHA-256 is `h` (query string left out of the extension), and `<h><ext>.sha256` the SHA-256 of the bytes and the
URL. A download goes to a hidden `.<h><ext>.part` sibling, is resumed with an HTTP `Range` request when the
connection drops, checked, then renamed: the cache never shows a partial or unverified file. One lock per entry
lets several processes fetch the same URL without clobbering each other.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from geovigie.atomic import atomic_path
from geovigie.digests import sha256_of
from geovigie.errors import InvalidInputError, RemoteSourceError
from geovigie.http import (
    RETRY_STATUSES,
    RetryableError,
    RetryPolicy,
    call,
    describe_failure,
    describe_status,
    http_client,
    resolve_timeout,
    retry_after,
)


class AssetDownloadError(RemoteSourceError):
    """An asset could not be downloaded: unreachable, refused, timed out or an HTTP error."""


class AssetChecksumError(AssetDownloadError):
    """A downloaded asset does not match its expected SHA-256 (corrupt or changed at the source)."""


def url_key(url: str) -> str:
    """The cache key of a URL: its SHA-256 in hex."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def _suffix(url: str) -> str:
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    suffix = Path(name).suffix.lower()
    return suffix if 1 < len(suffix) <= 8 and suffix[1:].isalnum() else ""


def _expected_digest(value: str | None) -> str | None:
    """A SHA-256 in hex, from plain hex or a STAC `file:checksum` multihash (`1220` + hex)."""
    if value is None:
        return None
    text = value.strip().lower()
    if len(text) == 68 and text.startswith("1220"):
        text = text[4:]
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise InvalidInputError(f"expected checksum {value!r} is not a SHA-256 (64 hex digits or a 1220… multihash)")
    return text


class AssetCache:
    """Assets downloaded once, kept under `root`, verified on every hit.

    Examples:
        >>> cache = AssetCache("geovigie-data/cache")  # doctest: +SKIP
        >>> path = cache.fetch("https://example.org/B04.tif")  # doctest: +SKIP

    Args:
        root: the cache folder.
        timeout: seconds to connect and between two reads (the settings' `http_timeout` when configured).
        retries: attempts after the first one, under the one HTTP policy (`geovigie.http`): connection errors,
            timeouts, dropped connections (resumed with `Range`) and 429/502/503/504.
        backoff: seconds before the first retry, doubled each time (a `Retry-After` header wins, up to 60 s).
        transport: an httpx transport (tests).
    """

    def __init__(self, root: str | Path, *, timeout: float | None = None, retries: int = 4, backoff: float = 0.5,
                 transport: Any = None) -> None:
        self.root = Path(root)
        self.timeout = resolve_timeout(timeout)
        self.retries, self.backoff = retries, backoff
        self._transport = transport

    def path_for(self, url: str, key: str | None = None) -> Path:
        """Where the bytes of `url` are kept (whether or not they are there yet); `key` replaces the URL as key."""
        key = url_key(key or url)
        return self.root / key[:2] / f"{key}{_suffix(url)}"

    def cached(self, url: str, key: str | None = None) -> Path | None:
        """The cached file of `url` if present and intact, else None (a corrupt entry is removed)."""
        path = self.path_for(url, key)
        if not path.is_file():
            return None
        sidecar = path.with_name(path.name + ".sha256")
        recorded = sidecar.read_text(encoding="utf-8").split()[0] if sidecar.is_file() else None
        actual = sha256_of(path)
        if recorded is None:
            self._write_sidecar(path, actual, url)
        elif recorded != actual:
            path.unlink(missing_ok=True)
            sidecar.unlink(missing_ok=True)
            return None
        return path

    def fetch(self, url: str, *, sha256: str | None = None, key: str | None = None) -> Path:
        """The local path of `url`, downloaded on first use.

        Args:
            url: http(s) URL (a signed URL's query string is part of the key), or a local path / file:// URL,
                returned as is when it exists.
            sha256: expected SHA-256 (hex or STAC `file:checksum` multihash); checked before the file appears.
            key: the cache key when not the URL, e.g. a signed URL without its expiring signature
                (`unsigned(url)`), so that a re-signed URL finds the same file.

        Raises:
            AssetDownloadError: unreachable, HTTP error, or still failing after the retries.
            AssetChecksumError: the bytes do not match `sha256` (nothing is left in the cache).
            InvalidInputError: not an http(s) URL nor an existing file.
        """
        scheme = urlsplit(url).scheme
        if scheme not in ("http", "https"):
            local = Path(url[7:] if scheme == "file" else url)
            if local.is_file():
                return local
            raise InvalidInputError(f"asset {url!r} is neither an http(s) URL nor an existing file")
        expected = _expected_digest(sha256)
        target = self.path_for(url, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with self._entry_lock(target):
            hit = self.cached(url, key)
            if hit is not None and (expected is None or sha256_of(hit) == expected):
                return hit
            part = target.with_name(f".{target.name}.part")
            digest = self._download(url, part)
            if expected is not None and digest != expected:
                part.unlink(missing_ok=True)
                raise AssetChecksumError(
                    f"asset {url}: SHA-256 {digest} does not match the expected {expected} (corrupt or changed at "
                    "the source); nothing was cached"
                )
            os.replace(part, target)
            self._write_sidecar(target, digest, url)
        return target

    @staticmethod
    def _write_sidecar(path: Path, digest: str, url: str) -> None:
        with atomic_path(path.with_name(path.name + ".sha256")) as tmp:
            tmp.write_text(f"{digest}  {url}\n", encoding="utf-8")

    @contextlib.contextmanager
    def _entry_lock(self, target: Path) -> Iterator[None]:
        from filelock import FileLock

        with FileLock(target.with_name(f".{target.name}.lock")):
            yield

    def _download(self, url: str, part: Path) -> str:
        """Download into `part`, resuming what is there; return the SHA-256 of the whole file."""
        import httpx

        with http_client(self.timeout, transport=self._transport) as client:
            try:
                call(lambda: self._attempt(client, url, part), RetryPolicy(self.retries, self.backoff))
            except (RetryableError, httpx.HTTPError) as err:  # still failing after the retries
                reason = describe_failure(err, self.timeout) or f"{type(err).__name__}: {err}"
                raise AssetDownloadError(f"asset {url}: {reason}; gave up after {self.retries + 1} attempts") from err
        return sha256_of(part)

    def _attempt(self, client: Any, url: str, part: Path) -> None:
        """One request, appending to `part` what it has not yet.

        Raises:
            RetryableError: a status worth retrying, a stale partial file, or a body shorter than announced.
            httpx.TransportError: the connection failed or dropped (retried; what came is kept).
            AssetDownloadError: an HTTP error not worth retrying (403, 404...).
        """
        have = part.stat().st_size if part.exists() else 0
        headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={have}-"} if have else {})}
        with client.stream("GET", url, headers=headers) as response:
            status = response.status_code
            if status == 416 and have:  # asked past the end: the partial file is stale
                part.unlink()
                raise RetryableError("the partial download did not match the remote file (HTTP 416)")
            if status in RETRY_STATUSES:
                raise RetryableError(f"HTTP {status}", retry_after(response))
            if status >= 400:
                response.read()
                raise AssetDownloadError(f"asset {url}: {describe_status(status, response.text)}")
            resumed = status == 206 and _range_start(response.headers.get("Content-Range")) == have
            expected_total = _total_length(response, have if resumed else 0)
            with open(part, "ab" if resumed else "wb") as handle:
                for block in response.iter_raw():  # as received: a dropped connection keeps what came
                    handle.write(block)
        size = part.stat().st_size
        if expected_total is not None and size != expected_total:
            raise RetryableError(f"received {size} of {expected_total} bytes")


def _range_start(content_range: str | None) -> int | None:
    if not content_range or not content_range.startswith("bytes "):
        return None
    try:
        return int(content_range[6:].split("-", 1)[0])
    except ValueError:
        return None


def _total_length(response: Any, start: int) -> int | None:
    length = response.headers.get("Content-Length")
    if length is None or not length.isdigit():
        return None
    return start + int(length)


def unsigned(url: str) -> str:
    """`url` without its query string (where signed URLs keep their expiring token)."""
    return url.split("?", 1)[0]


def patch_url_through(cache: AssetCache, *, signed: bool = False) -> Callable[[str], str]:
    """A `patch_url` for odc-stac loaders (`load_s2`, `load_landsat`): remote assets are read from the cache."""
    def patch(url: str) -> str:
        if not url.startswith(("http://", "https://")):
            return url
        return str(cache.fetch(url, key=unsigned(url) if signed else None))

    return patch


def cache_dir_of(settings: Any) -> Path:
    """The cache folder of `settings`: its `cache_dir` when it has one, else `DATA_DIR/cache`."""
    configured = getattr(settings, "cache_dir", None)
    return Path(configured) if configured else Path(settings.data_dir) / "cache"


def fetch_asset(url: str, *, settings: Any = None, cache_dir: str | Path | None = None,
                sha256: str | None = None, timeout: float | None = None, retries: int = 4) -> Path:
    """The local path of an asset URL, through the shared cache (see `AssetCache.fetch`).

    The cache folder is `cache_dir`, else the settings' (`cache_dir`, else `DATA_DIR/cache`), else the
    default settings'.
    """
    if cache_dir is None:
        if settings is None:
            from geovigie.settings import get_settings

            settings = get_settings()
        cache_dir = cache_dir_of(settings)
    return AssetCache(cache_dir, timeout=timeout, retries=retries).fetch(url, sha256=sha256)
