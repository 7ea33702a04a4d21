"""A real WMS for the tests: MapServer's `mapserv` CGI binary behind a threaded HTTP server on 127.0.0.1.

Each request runs `mapserv` once (plain CGI), with the mapfile chosen by the URL path (`/ortho`, `/ortho-small`).
`fail_next` makes the next GetMaps answer 503 on purpose (retry tests); `log` keeps every query string.
Run by hand: `python tests/catalog/wms/mapserver.py` serves on http://127.0.0.1:8089/ortho until Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

HERE = Path(__file__).resolve().parent
MAPFILES = {"/ortho": HERE / "ortho.map", "/ortho-small": HERE / "ortho-small.map"}
MAPSERV = shutil.which("mapserv") or "/usr/lib/cgi-bin/mapserv"


def mapserv_available() -> bool:
    """Whether the `mapserv` binary (Debian package cgi-mapserver) is installed."""
    return Path(MAPSERV).is_file() and os.access(MAPSERV, os.X_OK)


class MapServer(ThreadingHTTPServer):
    """The HTTP server; `url(path)` gives the endpoint of a mapfile."""

    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.log: list[dict[str, str]] = []
        self.fail_next = 0
        self.lock = threading.Lock()

    def url(self, path: str = "/ortho") -> str:
        """The WMS endpoint of one mapfile."""
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def getmaps(self, path: str | None = None) -> list[dict[str, str]]:
        """The GetMap queries received (all paths, or one)."""
        return [q for q in self.log if q.get("REQUEST", "").lower() == "getmap" and path in (None, q["_path"])]


class _Handler(BaseHTTPRequestHandler):
    server: MapServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        parts = urlsplit(self.path)
        mapfile = MAPFILES.get(parts.path)
        if mapfile is None:
            self.send_error(404, "no such WMS")
            return
        query = {k.upper(): v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        with self.server.lock:
            self.server.log.append({**query, "_path": parts.path})
            failing = query.get("REQUEST", "").lower() == "getmap" and self.server.fail_next > 0
            if failing:
                self.server.fail_next -= 1
        if failing:
            self.send_error(503, "failing on purpose")
            return
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "REQUEST_METHOD": "GET",
               "QUERY_STRING": parts.query, "SERVER_NAME": "127.0.0.1",
               "SERVER_PORT": str(self.server.server_address[1]),
               "SCRIPT_NAME": parts.path, "SERVER_PROTOCOL": "HTTP/1.1", "GATEWAY_INTERFACE": "CGI/1.1",
               "MAPSERVER_CONFIG_FILE": str(HERE / "mapserver.conf"), "MS_MAPFILE": str(mapfile)}
        done = subprocess.run([MAPSERV], env=env, capture_output=True, timeout=60, check=False)
        head, _, body = done.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve() -> MapServer:
    """Start the server in a daemon thread; call `shutdown()` then `server_close()` to stop it."""
    server = MapServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


if __name__ == "__main__":
    wms = MapServer(8089)
    print(f"WMS on {wms.url()} and {wms.url('/ortho-small')} (Ctrl-C to stop)")
    wms.serve_forever()
