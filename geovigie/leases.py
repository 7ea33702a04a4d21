"""Leases: which live processes use a shared resource (the private PostgreSQL), as small files in one folder.

A lease `<folder>/<pid>-<random>.lease` is JSON naming its holder: process id, the process's start time (so a
reused pid is not taken for the holder), host and command line. A process killed with `kill -9` leaves its
lease behind: it is stale, and `LeaseFolder.live()` removes it. An operator lease (`operator.lease`, no pid) is
held until it is released explicitly (`geovigie db start` ... `geovigie db stop`).

Leases say nothing about ordering: callers hold the resource's lock (`atomic.folder_lock`) around taking,
releasing and counting them. Leases name processes of this machine; a lease written on another host (a data
directory on a network file system) cannot be checked and is counted as live.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil

from geovigie.redaction import redact

OPERATOR = "operator"
SUFFIX = ".lease"
_START_TOLERANCE = 1.0
"""Seconds two readings of a process's start time may differ by (psutil derives it from the boot time)."""


def process_start_time(pid: int) -> float | None:
    """The start time of process `pid` (seconds since the epoch), None when it does not run (or is a zombie)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(process.create_time())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return 0.0  # it runs, under another user whose start time we may not read


def process_alive(pid: int | None, started: float | None) -> bool:
    """Whether process `pid`, started at `started`, still runs (a reused pid with another start time does not)."""
    if pid is None:
        return False
    now = process_start_time(pid)
    if now is None:
        return False
    return started is None or now == 0.0 or abs(now - started) <= _START_TOLERANCE


@dataclass(frozen=True)
class Lease:
    """One holder of the resource."""

    path: Path
    pid: int | None
    """None for the operator lease."""
    started: float | None
    host: str
    command: str
    since: float

    @property
    def operator(self) -> bool:
        """Held until released explicitly, whatever process wrote it."""
        return self.pid is None

    @property
    def alive(self) -> bool:
        """Whether the holder still holds it: operator leases always; others while their process runs."""
        if self.operator or self.host != socket.gethostname():
            return True
        return process_alive(self.pid, self.started)

    def describe(self) -> str:
        """One line for `geovigie db status`."""
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        who = "operator (geovigie db start)" if self.operator else f"pid {self.pid}"
        return f"{who} since {since}: {self.command}"


class LeaseFolder:
    """The leases of one resource, in `folder` (created on first lease)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def take(self, *, operator: bool = False, command: str | None = None) -> Lease:
        """Write a lease for this process (or the operator lease, kept if it exists) and return it."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        pid = None if operator else os.getpid()
        name = OPERATOR if operator else f"{pid}-{uuid.uuid4().hex[:8]}"
        lease = Lease(self.folder / f"{name}{SUFFIX}", pid, None if pid is None else process_start_time(pid),
                      socket.gethostname(), command if command is not None else _command_line(), time.time())
        record = {"pid": lease.pid, "started": lease.started, "host": lease.host, "command": lease.command,
                  "since": lease.since}
        tmp = lease.path.with_name(f".{lease.path.name}.tmp-{uuid.uuid4().hex[:8]}")
        tmp.write_text(json.dumps(record) + "\n", encoding="utf-8")
        os.replace(tmp, lease.path)
        return lease

    def release(self, lease: Lease) -> None:
        """Remove `lease` (gone already is fine)."""
        lease.path.unlink(missing_ok=True)

    def all(self) -> list[Lease]:
        """Every lease, live or stale (unreadable files are skipped)."""
        found = []
        for path in sorted(self.folder.glob(f"*{SUFFIX}")) if self.folder.is_dir() else []:
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                record = json.loads(path.read_text(encoding="utf-8"))
                found.append(Lease(path, None if record["pid"] is None else int(record["pid"]),
                                   record.get("started"), str(record.get("host", "")),
                                   str(record.get("command", "")), float(record.get("since", 0.0))))
        return found

    def reap(self) -> list[Lease]:
        """Remove the stale leases (their process is gone); return them."""
        stale = [lease for lease in self.all() if not lease.alive]
        for lease in stale:
            self.release(lease)
        return stale

    def live(self) -> list[Lease]:
        """The live leases, after removing the stale ones."""
        self.reap()
        return [lease for lease in self.all() if lease.alive]


def _command_line() -> str:
    """What this process runs, short: `geovigie serve --port 8000`, `pytest ...`."""
    argv = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]]
    text = redact(" ".join(argv))
    return text if len(text) <= 200 else text[:197] + "..."
