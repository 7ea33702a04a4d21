"""geovigie's private PostgreSQL + PostGIS + pgstac server, for machines with no database server of their own.

`PrivatePostgres(root).start()` creates the cluster on first use (`initdb`), starts it (`pg_ctl start`) listening
only on a Unix socket (no TCP port), creates the `geovigie` database with PostGIS and runs `pypgstac migrate`.

**One server, many users.** Every process (or object) using the server holds a lease (`geovigie.leases`) in
`root/leases`, taken and released under the lock `root/.lock`; `stop()` gives the lease up and the last user
out stops the server, so no command stops it under another. A process killed with `kill -9` leaves a stale lease:
the server's watcher (`python -m geovigie.postgres watch`, started with the server, one per server) looks every
second, removes stale leases and stops the server when no live lease is left, then exits. So an orphan server
lives about a second after its last user died; the next user (or `geovigie db status`) also reaps stale leases.
`geovigie db start` takes an operator lease that keeps the server up until `geovigie db stop`. (PostgreSQL's own
`idle_session_timeout` ends idle sessions, never the server, and an idle user such as a service holds no session:
only something that knows the users can stop it, hence leases and a watcher rather than a server setting.)

**Where the files are.** As a normal user the server runs as that user: cluster in `root/cluster`, log in
`root/postgres.log`, socket in `root/run`, or, when that path is too long for a Unix socket, in a fresh private
folder made by `mkdtemp` (random name, mode 0700; its path is read back from `postmaster.pid`, removed when the
server stops). PostgreSQL refuses to run as root: as root it runs as the `postgres` system user, and the cluster
stays under `root` only when `postgres` can already reach it; otherwise it lives in `/var/lib/geovigie/<name>-
<hash>/`, a root-owned 0711 folder geovigie creates itself (refusing one that is a symlink, not root's, or writable
by others), inside the root-owned 0711 `/var/lib/geovigie`. No mode of a folder geovigie did not create is ever
changed, and only what geovigie just created is given to `postgres` (never recursively).

With a managed server, skip all this: give its URL to `prepare_database` (and to the store and the API) instead.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import glob
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import quote

from geovigie.atomic import folder_lock
from geovigie.errors import DatabaseError, PostgresNotInstalledError
from geovigie.leases import Lease, LeaseFolder, process_alive, process_start_time
from geovigie.redaction import redact

__all__ = [
    "DatabaseBusyError",
    "DatabaseError",
    "PostgresNotInstalledError",
    "PrivatePostgres",
    "ServerStatus",
    "StacDatabase",
    "database_url",
    "find_bin_dir",
    "prepare_database",
    "stac_database",
]

logger = logging.getLogger(__name__)

DATABASE = "geovigie"
SUPERUSER = "postgres"
SERVER_USER_WHEN_ROOT = "postgres"
PORT = 5432
"""Only names the socket file (`.s.PGSQL.5432`): the cluster listens on no TCP port."""
SOCKET_PATH_MAX = 100
"""Unix socket paths are limited to 107 bytes; longer socket folders are made with `mkdtemp` instead."""
SYSTEM_DIR = Path("/var/lib/geovigie")
"""As root, clusters the `postgres` user cannot reach under the data directory live here."""
TEMP_SOCKET_PREFIX = "geovigie-pg-"
WATCH_INTERVAL = 1.0
"""Seconds between two looks of the watcher at the leases."""
INSTALL_HINT = ("install them with `apt-get install postgresql postgis` (as root), or set GEOVIGIE_DATABASE_URL "
                "to a PostgreSQL server with PostGIS")


class DatabaseBusyError(DatabaseError):
    """`geovigie db stop` while other processes use the server."""


def find_bin_dir(bin_dir: str | Path | None = None) -> Path:
    """The folder holding `initdb` and `pg_ctl`: `bin_dir`, else PATH, else Debian's /usr/lib/postgresql/<v>/bin.

    Raises:
        PostgresNotInstalledError: none found.
    """
    candidates = [Path(bin_dir)] if bin_dir else []
    if not bin_dir:
        found = shutil.which("pg_ctl")
        if found:
            candidates.append(Path(found).resolve().parent)
        versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                          if Path(p).parent.name.isdigit() else 0, reverse=True)
        candidates += [Path(p) for p in versions]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    where = str(bin_dir) if bin_dir else "PATH and /usr/lib/postgresql/*/bin"
    raise PostgresNotInstalledError(f"PostgreSQL server programs (initdb, pg_ctl) not found in {where}: "
                                    + INSTALL_HINT)


def database_url(socket_dir: Path, database: str = DATABASE, user: str = SUPERUSER, port: int = PORT) -> str:
    """A libpq/asyncpg URL reaching `database` through the Unix socket in `socket_dir`."""
    return f"postgresql://{user}@/{database}?host={quote(str(socket_dir), safe='/')}&port={port}"


def prepare_database(url: str, *, create_postgis: bool = True) -> str:
    """Install (or upgrade) pgstac in the database at `url`; returns the pgstac version.

    Raises:
        PostgresNotInstalledError: PostGIS is not installed on the server.
        DatabaseError: the server cannot be reached or refuses (e.g. no right to create extensions).
    """
    import psycopg
    from pypgstac.db import PgstacDB
    from pypgstac.migrate import Migrate

    try:
        if create_postgis:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        db = PgstacDB(dsn=url)
        try:
            version = Migrate(db).run_migration()
        finally:
            db.disconnect()
            db.close()
    except psycopg.errors.UndefinedFile as err:
        raise PostgresNotInstalledError(f"PostGIS is not installed for the PostgreSQL server at {redact(url)}: "
                                        "install apt `postgis` (postgresql-<version>-postgis-3)") from err
    except psycopg.Error as err:
        raise DatabaseError(f"cannot prepare pgstac in {redact(url)}: {_first_line(err)}") from err
    return str(version)


def _first_line(error: BaseException) -> str:
    text = redact(str(error).strip())
    return text.splitlines()[0] if text else type(error).__name__


@dataclass
class ServerStatus:
    """What `geovigie db status` prints."""

    running: bool
    pid: int | None
    cluster: Path
    socket_dir: Path | None
    url: str | None
    watcher_pid: int | None
    leases: list[Lease] = field(default_factory=list)
    reaped: list[Lease] = field(default_factory=list)
    """Stale leases (of processes that died) removed by this look."""


class PrivatePostgres:
    """A PostgreSQL cluster owned by geovigie for `root` (typically `<data_dir>/postgres`).

    Examples:
        >>> with PrivatePostgres("geovigie-data/postgres") as url:  # doctest: +SKIP
        ...     store = PgstacItemStore(url, "geovigie-data/results")
    """

    def __init__(self, root: str | Path, *, bin_dir: str | Path | None = None, database: str = DATABASE,
                 port: int = PORT, timeout: float = 60.0, system_dir: str | Path = SYSTEM_DIR,
                 home: str | Path | None = None) -> None:
        self.root = Path(root).absolute()
        if home is not None:  # the watcher is told where the cluster is rather than looking (which may create it)
            self.__dict__["home"] = Path(home)
        self.database, self.port, self.timeout = database, port, timeout
        self.system_dir = Path(system_dir)
        self.leases = LeaseFolder(self.root / "leases")
        self._bin_dir = bin_dir
        self._lease: Lease | None = None
        self.started = False
        """True when this object started the server process (informative: the last user out stops it)."""
        self._seen: tuple[int | None, float | None, Path | None] = (None, None, None)
        """The server this object started or watches: pid, start time, socket folder (for when its files vanish)."""

    # where things are
    @property
    def server_user(self) -> str | None:
        """The system user the server runs as: `postgres` when we are root, else None (ourselves)."""
        return SERVER_USER_WHEN_ROOT if os.geteuid() == 0 else None

    @cached_property
    def home(self) -> Path:
        """The folder of the cluster, its log and (normally) its socket: `root`, or as root when `postgres`
        cannot reach `root`, a folder of geovigie's own under `system_dir`."""
        if self.server_user is None:
            return self.root
        system = self.system_dir / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', self.root.parent.name)[:40]}-" \
                                   f"{hashlib.sha256(str(self.root).encode()).hexdigest()[:16]}"
        if (self.root / "cluster" / "PG_VERSION").is_file():
            if not self._reachable(self.root):
                raise DatabaseError(f"the PostgreSQL cluster {self.root / 'cluster'} exists but the `postgres` user "
                                    f"cannot reach it ({self._blocking_folder()} lets no other user through): "
                                    "geovigie changes no folder it did not create; give that folder o+x yourself, "
                                    "or run geovigie as a normal user")
            return self.root
        if (system / "cluster" / "PG_VERSION").is_file():
            return system
        if not self.root.exists():
            self.root.mkdir(parents=True)
            self.root.chmod(0o711)  # made here: whatever the umask, `postgres` may pass (not list) it
        return self.root if self._reachable(self.root) else system

    @property
    def cluster(self) -> Path:
        """The cluster folder (PGDATA)."""
        return self.home / "cluster"

    @property
    def log(self) -> Path:
        """The server's log."""
        return self.home / "postgres.log"

    @property
    def socket_dir(self) -> Path:
        """The folder of the server's Unix socket: where the running server says, else where it will go."""
        live = self._live_socket_dir()
        return live if live is not None else self.home / "run"

    @property
    def url(self) -> str:
        """The database URL (Unix socket, superuser `postgres`, trust authentication within the private folder)."""
        return database_url(self.socket_dir, self.database, SUPERUSER, self.port)

    @property
    def holds_lease(self) -> bool:
        """Whether this object holds a lease on the server (between `start` and `stop`)."""
        return self._lease is not None

    def _live_socket_dir(self) -> Path | None:
        """The socket folder from `postmaster.pid` (line 5), None when the server has not written it."""
        with contextlib.suppress(OSError, IndexError, ValueError, DatabaseError):
            lines = (self.cluster / "postmaster.pid").read_text(encoding="utf-8").split("\n")
            if lines[4].strip():
                return Path(lines[4].strip())
        return None

    # commands
    def _as_server(self, command: list[str]) -> list[str]:
        if self.server_user:
            runuser = shutil.which("runuser") or next(
                (path for path in ("/usr/sbin/runuser", "/sbin/runuser") if os.access(path, os.X_OK)), "runuser")
            return [runuser, "-u", self.server_user, "--", *command]
        return command

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = self._as_server([str(find_bin_dir(self._bin_dir) / args[0]), *args[1:]])
        cwd = self.home if self.home.is_dir() else None  # the server user may not enter our working folder
        result = subprocess.run(command, capture_output=True, text=True, timeout=self.timeout + 30, check=False,
                                cwd=cwd)
        if check and result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise DatabaseError(f"{args[0]} failed for the cluster in {self.cluster}: "
                                f"{detail[-1] if detail else 'exit ' + str(result.returncode)}{self._log_tail()}")
        return result

    def _reachable(self, folder: Path) -> bool:
        """Whether the server user can enter `folder` (through every parent: permissions and ACLs as they are)."""
        return subprocess.run(self._as_server(["test", "-x", str(folder)]), capture_output=True,
                              check=False).returncode == 0

    def _blocking_folder(self) -> Path:
        """The first folder on the way to `root` the server user cannot enter."""
        for folder in [*reversed(self.root.parents), self.root]:
            if not self._reachable(folder):
                return folder
        return self.root

    def _log_tail(self) -> str:
        try:
            lines = self.log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            return ""
        worst = [line for line in lines if "FATAL" in line or "PANIC" in line]
        return f" (see {self.log}: {(worst or lines)[-1]})" if lines else ""

    def is_running(self) -> bool:
        """Whether a server runs on this cluster (`pg_ctl status`)."""
        if not (self.cluster / "PG_VERSION").is_file():
            return False
        result = self._run("pg_ctl", "status", "-D", str(self.cluster), check=False)
        if result.returncode == 4:  # the folder exists but the server user cannot reach it
            raise DatabaseError(f"PostgreSQL cannot reach {self.cluster}: {result.stderr.strip()}")
        return result.returncode == 0

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        """One process at a time creates, starts, stops the server or changes the leases."""
        return folder_lock(self.root)

    # folders and files of the server, created by us or refused
    def _server_ids(self) -> tuple[int, int]:
        if self.server_user is None:
            return os.geteuid(), os.getegid()
        import pwd

        try:
            entry = pwd.getpwnam(self.server_user)
        except KeyError as err:
            raise PostgresNotInstalledError(f"running as root and there is no `{self.server_user}` system user to "
                                            f"run PostgreSQL as: {INSTALL_HINT}, or run geovigie as a normal user"
                                            ) from err
        return entry.pw_uid, entry.pw_gid

    def _server_owned(self, path: Path, *, folder: bool) -> Path:
        """`path` for the server user: created now (mode 0700 / 0600, given to it), or checked if it exists (no
        symlink, owned by it); never a recursive chown, never someone else's file."""
        uid, gid = self._server_ids()
        try:
            if folder:
                os.mkdir(path, 0o700)
            else:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600))
        except FileExistsError:
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode) or (folder and not stat.S_ISDIR(info.st_mode)):
                raise DatabaseError(f"refusing {path}: a symlink or not a {'folder' if folder else 'file'} "
                                    "where geovigie keeps its PostgreSQL files") from None
            if info.st_uid != uid:
                raise DatabaseError(f"refusing {path}: owned by uid {info.st_uid}, not by the user the server runs "
                                    f"as (uid {uid}); move it away") from None
            return path
        if os.geteuid() == 0:
            os.chown(path, uid, gid, follow_symlinks=False)
        return path

    def _root_owned_folder(self, path: Path) -> Path:
        """As root: `path` as a root-owned 0711 folder made here, or an existing one that is safe to use."""
        try:
            os.mkdir(path, 0o711)
            os.chmod(path, 0o711)  # ours: the umask does not decide
        except FileExistsError:
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 \
                    or info.st_mode & 0o022:
                raise DatabaseError(f"refusing {path}: it must be a folder owned by root and writable by root only"
                                    ) from None
        except OSError as err:
            raise DatabaseError(f"cannot create {path} for the PostgreSQL cluster: {err.strerror}") from err
        return path

    def _make_home(self) -> None:
        if self.home != self.root:
            self._root_owned_folder(self.system_dir)
            self._root_owned_folder(self.home)
            logger.info("the postgres user cannot reach %s: the cluster lives in %s", self.root, self.home)
        self.home.mkdir(parents=True, exist_ok=True)

    def _initdb(self) -> None:
        self._make_home()
        if self.cluster.is_dir() and not self.cluster.is_symlink() and any(self.cluster.iterdir()):
            raise DatabaseError(f"{self.cluster} exists but holds no PostgreSQL cluster (no PG_VERSION): "
                                "move it away or delete it")
        self._server_owned(self.cluster, folder=True)
        self._run("initdb", "-D", str(self.cluster), "-U", SUPERUSER, "-E", "UTF8", "--locale=C",
                  "--auth-local=trust", "--auth-host=reject")
        logger.info("created the PostgreSQL cluster %s", self.cluster)

    def _new_socket_dir(self) -> Path:
        local = self.home / "run"
        if len(str(local)) + len(f"/.s.PGSQL.{self.port}") <= SOCKET_PATH_MAX:
            return self._server_owned(local, folder=True)
        made = Path(tempfile.mkdtemp(prefix=TEMP_SOCKET_PREFIX))  # random name, 0700, ours: nothing to plant
        if os.geteuid() == 0:
            uid, gid = self._server_ids()
            os.chown(made, uid, gid, follow_symlinks=False)
        return made

    def _write_config(self, socket_dir: Path) -> None:
        """Settings re-written before every start (the socket folder follows the data directory if it moves)."""
        conf = self.cluster / "postgresql.conf"
        include = "include_if_exists = 'geovigie.conf'"
        text = conf.read_text(encoding="utf-8")
        if include not in text:
            conf.write_text(text + f"\n{include}\n", encoding="utf-8")
        socket = str(socket_dir).replace("'", "''")
        (self.cluster / "geovigie.conf").write_text(
            "# written by geovigie: a private cluster reached only through its Unix socket\n"
            f"listen_addresses = ''\nunix_socket_directories = '{socket}'\nunix_socket_permissions = 0700\n"
            f"port = {self.port}\n", encoding="utf-8")

    def _start_server(self) -> None:
        socket_dir = self._new_socket_dir()
        self._write_config(socket_dir)
        self._server_owned(self.log, folder=False)
        try:
            self._run("pg_ctl", "start", "-w", "-t", str(int(self.timeout)), "-D", str(self.cluster),
                      "-l", str(self.log))
        except BaseException:
            self._remove_temp_socket_dir(socket_dir)
            raise
        self.started = True
        pid = self._postmaster_pid()
        self._seen = (pid, process_start_time(pid) if pid else None, socket_dir)
        logger.info("started PostgreSQL on %s", socket_dir)

    def _stop_server(self) -> None:
        """Stop the server now, whoever uses it: `pg_ctl stop`, else (its folder deleted under it, pg_ctl failing)
        by its pid; return once it is gone, its private socket folder removed."""
        seen_pid, seen_started, seen_socket = self._seen
        socket_dir, pid = self._live_socket_dir() or seen_socket, self._postmaster_pid() or seen_pid
        started = seen_started if pid == seen_pid and seen_started else process_start_time(pid) if pid else None
        try:
            if self.is_running():
                self._run("pg_ctl", "stop", "-m", "fast", "-w", "-t", str(int(self.timeout)), "-D", str(self.cluster))
        except DatabaseError as err:
            logger.warning("pg_ctl could not stop the server of %s (%s): stopping pid %s", self.cluster, err, pid)
        self._stop_pid(pid, started, socket_dir)
        self._seen = (None, None, None)
        logger.info("stopped PostgreSQL in %s", self.cluster)

    def _stop_pid(self, pid: int | None, started: float | None, socket_dir: Path | None) -> None:
        """Make sure server `pid` is gone (fast shutdown; immediate after the timeout), then remove its private
        socket folder. pg_ctl returns once postmaster.pid is gone and the exiting server removes its socket lock
        just after (a start in between fails, "lock file ... already exists"): waiting for the process covers it."""
        if pid is not None and process_alive(pid, started):
            for signum in (signal.SIGINT, signal.SIGQUIT):  # PostgreSQL's "fast", then "immediate" shutdown
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signum)
                deadline = time.monotonic() + self.timeout
                while process_alive(pid, started) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if not process_alive(pid, started):
                    break
        if socket_dir is not None:
            self._remove_temp_socket_dir(socket_dir)

    def _remove_temp_socket_dir(self, socket_dir: Path) -> None:
        """Remove a private socket folder made by `_new_socket_dir` once its server is gone (with the socket files
        a server that could not shut down cleanly leaves)."""
        if socket_dir.name.startswith(TEMP_SOCKET_PREFIX) and socket_dir.parent == Path(tempfile.gettempdir()):
            with contextlib.suppress(OSError):
                for name in (f".s.PGSQL.{self.port}", f".s.PGSQL.{self.port}.lock"):
                    (socket_dir / name).unlink(missing_ok=True)
                socket_dir.rmdir()

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.cluster / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError, DatabaseError):
            return None

    def _ensure_database(self) -> None:
        import psycopg

        admin = database_url(self.socket_dir, "postgres", SUPERUSER, self.port)
        try:
            with psycopg.connect(admin, autocommit=True) as conn:
                if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone() is None:
                    conn.execute(f'CREATE DATABASE "{self.database}"')
        except psycopg.Error as err:
            raise DatabaseError(f"cannot create database {self.database!r} in {self.cluster}: {_first_line(err)}"
                                ) from err

    # the watcher: stops the server when every user died
    @property
    def _watcher_file(self) -> Path:
        return self.root / "watcher.json"

    def _watcher_pid(self) -> int | None:
        """The pid of the live watcher of this cluster, None when there is none."""
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            record = json.loads(self._watcher_file.read_text(encoding="utf-8"))
            if process_alive(int(record["pid"]), record["started"]):
                return int(record["pid"])
        return None

    def _ensure_watcher(self) -> None:
        if self._watcher_pid() is not None:
            return
        # -P: the working folder (the data directory's) is not put on sys.path, so nothing there is imported
        command = [sys.executable, "-P", "-m", "geovigie.postgres", "watch", str(self.root), "--port",
                   str(self.port), "--system-dir", str(self.system_dir), "--home", str(self.home)]
        pid, socket_dir = self._postmaster_pid(), self._live_socket_dir()
        if pid is not None:  # what to stop should the cluster folder vanish before the watcher has read it
            command += ["--server-pid", str(pid), "--server-started", repr(process_start_time(pid))]
        if socket_dir is not None:
            command += ["--socket-dir", str(socket_dir)]
        if self._bin_dir:
            command += ["--bin-dir", str(self._bin_dir)]
        with open(self.root / "watcher.log", "ab") as log:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True,
                                       start_new_session=True, cwd="/")  # absolute paths: a deleted folder is no cwd
        record = {"pid": process.pid, "started": process_start_time(process.pid)}
        self._watcher_file.write_text(json.dumps(record) + "\n", encoding="utf-8")

    def watch(self, interval: float = WATCH_INTERVAL, server: tuple[int | None, float | None, Path | None] = (
            None, None, None)) -> None:
        """The watcher's loop: every `interval` seconds, reap stale leases; stop the server when none is live and
        return; return as well when the server stopped or another watcher took over. A server whose cluster
        folder was deleted under it is stopped by its pid (pg_ctl cannot reach it any more): `server` is its pid,
        start time and socket folder, as the process that started the watcher saw them."""
        me = os.getpid()
        self._seen = server
        while True:
            time.sleep(interval)
            try:
                if self._watch_once(me, server):
                    return
            except Exception:  # keep watching whatever one look met; a deleted cluster ends the server anyway
                logger.exception("watching %s", self.cluster)
                if not (self.cluster / "PG_VERSION").is_file():
                    self._stop_pid(*server)
                    return

    def _watch_once(self, me: int, server: tuple[int | None, float | None, Path | None]) -> bool:
        """One look of the watcher; True when its work is over."""
        if not (self.cluster / "PG_VERSION").is_file():
            logger.warning("the cluster %s was deleted under its server: stopping pid %s", self.cluster, server[0])
            self._stop_pid(*server)
            return True
        with contextlib.ExitStack() as locked:
            try:  # never re-create a data directory deleted meanwhile
                locked.enter_context(folder_lock(self.root, create=False))
            except OSError:
                self._stop_pid(*server)
                return True
            with contextlib.suppress(OSError, ValueError, KeyError):
                if json.loads(self._watcher_file.read_text(encoding="utf-8"))["pid"] != me:
                    return True  # replaced (a later server has its own watcher)
            if not self.is_running():
                if server[0] is not None and process_alive(server[0], server[1]):  # its cluster went away
                    logger.warning("pg_ctl cannot reach the server of %s: stopping pid %s", self.cluster, server[0])
                    self._stop_pid(*server)
                self._watcher_file.unlink(missing_ok=True)
                return True
            if not self.leases.live():
                logger.warning("no live user of %s left: stopping it", self.cluster)
                self._stop_server()
                self._watcher_file.unlink(missing_ok=True)
                return True
        return False

    # the users' side
    def start(self, *, operator: bool = False) -> str:
        """Take a lease (the operator lease with `operator`), start the server unless it runs, prepare pgstac;
        returns the database URL. The cluster is created on first use.

        Raises:
            PostgresNotInstalledError: initdb/pg_ctl or PostGIS missing.
            DatabaseError: the server does not start (the message quotes its log).
        """
        find_bin_dir(self._bin_dir)
        with self._locked():
            self.leases.reap()
            if not (self.cluster / "PG_VERSION").is_file():
                self._initdb()
            if not self.is_running():
                self._start_server()
            self._ensure_watcher()
            if operator:
                if not any(lease.operator for lease in self.leases.all()):
                    self.leases.take(operator=True, command="geovigie db start")
            elif self._lease is None:
                self._lease = self.leases.take()
            try:
                self._ensure_database()
                prepare_database(self.url)
            except BaseException:
                self._leave()
                raise
            return self.url

    def _leave(self) -> None:
        """Under the lock: give up this object's lease; stop the server when no live lease is left."""
        if self._lease is not None and self._lease.pid == os.getpid():  # a forked child keeps its parent's
            self.leases.release(self._lease)
        self._lease = None
        if not self.leases.live() and self.is_running():
            self._stop_server()

    def stop(self) -> None:
        """Give up this object's lease; the server stops when no live user is left (another's keeps it up)."""
        with self._locked():
            self._leave()
        self.started = False

    def shutdown(self, *, force: bool = False) -> bool:
        """Stop the server (`geovigie db stop`): release the operator lease, and refuse while other live processes
        hold leases unless `force`. Returns whether a server was running.

        Raises:
            DatabaseBusyError: other processes use it and not `force`.
        """
        if not self.root.is_dir():
            return False  # nothing was ever started here: create nothing
        with self._locked():
            live = self.leases.live()
            users = [lease for lease in live if not lease.operator]
            if users and not force:
                raise DatabaseBusyError(
                    f"the PostgreSQL of {self.root} is used by {len(users)} process(es) "
                    f"({'; '.join(lease.describe() for lease in users[:3])}): stop them first, or pass --force")
            for lease in live:
                self.leases.release(lease)
            self._lease = None
            running = self.is_running()
            if running:
                self._stop_server()
            return running

    def status(self) -> ServerStatus:
        """Whether the server runs, its pid, socket, watcher and live leases (stale ones are removed)."""
        if not self.root.is_dir():
            return ServerStatus(False, None, self.root / "cluster", None, None, None)
        with self._locked():
            reaped = self.leases.reap()
            running = self.is_running()
            if running:
                self._ensure_watcher()  # an orphan whose watcher was killed too: stopped within a second if unused
            return ServerStatus(running, self._postmaster_pid() if running else None, self.cluster,
                                self._live_socket_dir() if running else None, self.url if running else None,
                                self._watcher_pid(), [lease for lease in self.leases.all() if lease.alive], reaped)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class StacDatabase:
    """The database of the STAC API for one configuration: the server at `url`, or the private cluster under
    `data_dir/postgres`. Started (and pgstac prepared) on first use, which takes a lease on the private cluster for
    this process; `stop()` gives it up (the server stops when no other user is left), as does the process's exit.
    One per process and location (`stac_database`): the stores that publish and the service that serves share it.
    """

    def __init__(self, url: str | None, data_dir: str | Path, *, bin_dir: str | Path | None = None) -> None:
        self.configured_url = url
        self.cluster = None if url else PrivatePostgres(Path(data_dir) / "postgres", bin_dir=bin_dir)
        self._ready: str | None = None
        self._lock = threading.Lock()
        self._exit_hook = False
        self.generation = 0
        """Counts the starts: connections opened before a restart are dead (stores reconnect when it changes)."""

    @property
    def location(self) -> str:
        """The database for messages (no password)."""
        return redact(self.configured_url) if self.configured_url else f"the private PostgreSQL in {self.cluster_root}"

    @property
    def cluster_root(self) -> Path | None:
        """The private cluster's folder, None with a configured server."""
        return self.cluster.root if self.cluster is not None else None

    @property
    def started_here(self) -> bool:
        """Whether this process holds a lease on the private cluster (and so gives it up on `stop`)."""
        return self.cluster is not None and self.cluster.holds_lease

    def url(self) -> str:
        """The database URL, starting the private cluster or preparing pgstac in the server on first call.

        Raises:
            PostgresNotInstalledError: no PostgreSQL programs or PostGIS.
            DatabaseError: the server cannot be started or reached.
        """
        with self._lock:
            if self._ready is None:
                if self.cluster is not None:
                    if not self._exit_hook:  # a process that ends without stopping it still gives its lease up
                        atexit.register(self.stop)
                        self._exit_hook = True
                    self._ready = self.cluster.start()
                    self.generation += 1
                else:
                    assert self.configured_url is not None
                    prepare_database(self.configured_url)
                    self._ready = self.configured_url
            return self._ready

    def stop(self) -> None:
        """Give up this process's lease on the private cluster (the last user stops it); the next `url()` takes a
        lease again."""
        with self._lock:
            if self.cluster is not None and self.cluster.holds_lease:
                self.cluster.stop()
            self._ready = None


_DATABASES: dict[tuple[str, str], StacDatabase] = {}
_DATABASES_LOCK = threading.Lock()


def stac_database(url: str | None, data_dir: str | Path, *, bin_dir: str | Path | None = None) -> StacDatabase:
    """The process's `StacDatabase` for a server URL, or for the private cluster under `data_dir`."""
    key = ("url", url) if url else ("cluster", str((Path(data_dir) / "postgres").absolute()))
    with _DATABASES_LOCK:
        if key not in _DATABASES:
            _DATABASES[key] = StacDatabase(url, data_dir, bin_dir=bin_dir)
        return _DATABASES[key]


def main(argv: list[str] | None = None) -> int:
    """`python -m geovigie.postgres watch ROOT`: the watcher started with the server."""
    parser = argparse.ArgumentParser(prog="python -m geovigie.postgres")
    parser.add_argument("command", choices=["watch"])
    parser.add_argument("root", type=Path)
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--bin-dir", default=None)
    parser.add_argument("--system-dir", default=str(SYSTEM_DIR))
    parser.add_argument("--interval", type=float, default=WATCH_INTERVAL)
    parser.add_argument("--server-pid", type=int, default=None)
    parser.add_argument("--server-started", type=float, default=None)
    parser.add_argument("--socket-dir", type=Path, default=None)
    parser.add_argument("--home", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s watcher %(process)d: %(message)s")
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # only the leases decide
    PrivatePostgres(args.root, bin_dir=args.bin_dir, port=args.port, system_dir=args.system_dir, home=args.home).watch(
        args.interval, (args.server_pid, args.server_started, args.socket_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
