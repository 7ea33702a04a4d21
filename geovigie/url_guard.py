"""User-given URLs (a STAC API, a WMS in a job request) reach only allow-listed public hosts: no SSRF.

`check_remote_url` refuses before any request is sent: a scheme other than http(s), credentials in the URL, a host
outside the allow-list, and any host that resolves (every address is checked) to a loopback, private, link-local,
shared, reserved, multicast or unspecified address. `check_redirects` then follows the URL's redirects by hand,
checking each hop the same way and refusing one that leaves the host.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit

from geovigie.errors import InvalidInputError

Resolver = Callable[[str], list[str]]
MAX_REDIRECTS = 5


class UnsafeUrlError(InvalidInputError):
    """A user-given URL is not allowed: unknown host, internal address, or a redirect elsewhere."""


def _resolve(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as err:
        raise UnsafeUrlError(f"URL host {host!r} does not resolve ({err})") from err
    return sorted({str(info[4][0]) for info in infos})


def _allowed(host: str, allow_list: Sequence[str]) -> bool:
    host = host.lower().rstrip(".")
    for entry in allow_list:
        entry = entry.lower().rstrip(".")
        if (entry.startswith("*.") and host.endswith(entry[1:])) or host == entry:
            return True
    return False


def _internal(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def check_remote_url(url: str, allow_list: Sequence[str], *, resolve: Resolver | None = None) -> str:
    """`url` if a job may reach it, else `UnsafeUrlError` naming why; nothing is sent to the host.

    Args:
        url: the user-given URL.
        allow_list: host names, or `*.example.org` for every subdomain of example.org (settings'
            `remote_url_allow_list`).
        resolve: host -> IP addresses (default: the system resolver).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrlError(f"URL {url!r}: only http(s) URLs with a host are accepted")
    if parts.username or parts.password:
        raise UnsafeUrlError(f"URL {parts.hostname}: credentials in URLs are not accepted")
    host = parts.hostname
    try:
        literal = [str(ipaddress.ip_address(host))]
    except ValueError:
        literal = []
    if literal and _internal(literal[0]):
        raise UnsafeUrlError(f"URL {url!r}: {host} is a loopback, private or link-local address")
    if not _allowed(host, allow_list):
        shown = ", ".join(allow_list) or "empty: set remote_url_allow_list"
        raise UnsafeUrlError(f"URL host {host!r} is not in the allow-list ({shown})")
    addresses = literal or (resolve or _resolve)(host)
    if not addresses:
        raise UnsafeUrlError(f"URL host {host!r} does not resolve")
    bad = [a for a in addresses if _internal(a)]
    if bad:
        raise UnsafeUrlError(f"URL host {host!r} resolves to {bad[0]}, a loopback, private or link-local address")
    return url


def check_redirects(url: str, allow_list: Sequence[str], *, resolve: Resolver | None = None,
                    transport: Any = None, timeout: float = 10.0) -> str:
    """Follow `url`'s redirects one by one (HEAD-like GET, body unread), each hop checked; returns the final URL.

    Raises:
        UnsafeUrlError: a hop fails `check_remote_url`, leaves the URL's host, or there are too many.
    """
    import httpx

    current = check_remote_url(url, allow_list, resolve=resolve)
    host = urlsplit(url).hostname
    with httpx.Client(transport=transport, follow_redirects=False, timeout=timeout, trust_env=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                with client.stream("GET", current) as response:
                    location = response.headers.get("location")
                    if not response.is_redirect or not location:
                        return current
            except httpx.HTTPError as err:
                raise UnsafeUrlError(f"URL {current!r}: cannot be reached ({err})") from err
            target = urljoin(current, location)
            if urlsplit(target).hostname != host:
                raise UnsafeUrlError(f"URL {url!r} redirects to another host ({urlsplit(target).hostname}); "
                                     "give the final URL if that host is allowed")
            current = check_remote_url(target, allow_list, resolve=resolve)
    raise UnsafeUrlError(f"URL {url!r}: more than {MAX_REDIRECTS} redirects")
