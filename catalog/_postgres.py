"""A private PostgreSQL + PostGIS + pgstac cluster under the data directory, for machines with no database server.

`PrivatePostgres(root).start()` creates the cluster on first use (`initdb`), starts it (`pg_ctl start`) listening
only on a Unix socket in a private folder (no TCP port at all), creates the `geovigie` database with PostGIS and
runs `pypgstac migrate`; on an existing cluster it only starts it (or reuses it when another process already did).
`stop()` stops it if this object started it. PostgreSQL refuses to run as root: as root, the server runs as the
`postgres` system user (created by apt `postgresql`) through `runuser`, owns the cluster folder, and is given
traverse (`o+x`) permission on the parent folders that lack it. With a managed server, skip all this: give its URL
to `prepare_database` (and to the store and the API) instead.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import hashlib
import logging
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

from geovigie.atomic import folder_lock
from geovigie.errors import GeovigieError

logger = logging.getLogger(__name__)

DATABASE = "geovigie"
SUPERUSER = "postgres"
SERVER_USER_WHEN_ROOT = "postgres"
PORT = 5432
"""Only names the socket file (`.s.PGSQL.5432`): the cluster listens on no TCP port."""
SOCKET_PATH_MAX = 100
"""Unix socket paths are limited to 107 bytes; longer socket folders move under the temporary directory."""
INSTALL_HINT = ("install them with `apt-get install postgresql postgis` (as root), or set GEOVIGIE_DATABASE_URL "
                "to a PostgreSQL server with PostGIS")


class DatabaseError(GeovigieError, OSError):
    """The PostgreSQL database behind the STAC store cannot be started, reached or used."""


class PostgresNotInstalledError(DatabaseError):
    """The PostgreSQL server programs (initdb, pg_ctl) or PostGIS are not installed."""


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


def redact(url: str) -> str:
    """`url` without its password, for messages."""
    return re.sub(r"(://[^:/@?]*):[^@/?]*@", r"\1:***@", url)


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
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class PrivatePostgres:
    """A PostgreSQL cluster owned by geovigie in `root` (typically `<data_dir>/postgres`).

    Examples:
        >>> with PrivatePostgres("geovigie-data/postgres") as url:  # doctest: +SKIP
        ...     store = PgstacItemStore(url, "geovigie-data/results")
    """

    def __init__(self, root: str | Path, *, bin_dir: str | Path | None = None, database: str = DATABASE,
                 port: int = PORT, timeout: float = 60.0) -> None:
        self.root = Path(root).absolute()
        self.cluster = self.root / "cluster"
        self.log = self.root / "postgres.log"
        self.database, self.port, self.timeout = database, port, timeout
        self._bin_dir = bin_dir
        self.started = False
        """True when this object started the server (and so `stop` stops it)."""
        self._pid: int | None = None

    # where things are
    @property
    def socket_dir(self) -> Path:
        """The private folder of the server's Unix socket (under the temporary directory when the path is long)."""
        local = self.root / "run"
        if len(str(local)) + len(f"/.s.PGSQL.{self.port}") <= SOCKET_PATH_MAX:
            return local
        digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"geovigie-pg-{digest}"

    @property
    def url(self) -> str:
        """The database URL (Unix socket, superuser `postgres`, trust authentication within the private folder)."""
        return database_url(self.socket_dir, self.database, SUPERUSER, self.port)

    @property
    def server_user(self) -> str | None:
        """The system user the server runs as: `postgres` when we are root, else None (ourselves)."""
        return SERVER_USER_WHEN_ROOT if os.geteuid() == 0 else None

    # commands
    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(find_bin_dir(self._bin_dir) / args[0]), *args[1:]]
        if self.server_user:
            runuser = shutil.which("runuser") or next(
                (path for path in ("/usr/sbin/runuser", "/sbin/runuser") if os.access(path, os.X_OK)), "runuser")
            command = [runuser, "-u", self.server_user, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=self.timeout + 30, check=False)
        if check and result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise DatabaseError(f"{args[0]} failed for the cluster in {self.cluster}: "
                                f"{detail[-1] if detail else 'exit ' + str(result.returncode)}{self._log_tail()}")
        return result

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
            raise DatabaseError(f"PostgreSQL cannot reach {self.cluster}: {result.stderr.strip()} (as root, every "
                                f"parent folder must let the `{self.server_user}` user through: chmod o+x)")
        return result.returncode == 0

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        """One process at a time creates or starts the cluster."""
        return folder_lock(self.root)

    def _give_to_server_user(self, *paths: Path) -> None:
        """As root: the server user owns its folders and can reach them through every parent folder."""
        user = self.server_user
        if user is None:
            return
        try:
            entry = pwd.getpwnam(user)
        except KeyError as err:
            raise PostgresNotInstalledError(f"running as root and there is no `{user}` system user to run "
                                            f"PostgreSQL as: {INSTALL_HINT}, or run geovigie as a normal user") from err
        for path in paths:
            if not path.is_file():
                path.mkdir(parents=True, exist_ok=True, mode=0o700)
            if path.stat().st_uid != entry.pw_uid:
                for owned in [path, *(path.rglob("*") if path.is_dir() else [])]:
                    os.chown(owned, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
        for parent in {p for path in paths for p in path.parents}:
            mode = parent.stat()
            if mode.st_uid != entry.pw_uid and not mode.st_mode & stat.S_IXOTH:
                logger.info("giving other users traverse permission (o+x) on %s so PostgreSQL can reach %s",
                            parent, self.root)
                parent.chmod(stat.S_IMODE(mode.st_mode) | stat.S_IXOTH)

    def _initdb(self) -> None:
        if self.cluster.exists() and any(self.cluster.iterdir()):
            raise DatabaseError(f"{self.cluster} exists but holds no PostgreSQL cluster (no PG_VERSION): "
                                "move it away or delete it")
        self._give_to_server_user(self.cluster)
        self.cluster.chmod(0o700)
        self._run("initdb", "-D", str(self.cluster), "-U", SUPERUSER, "-E", "UTF8", "--locale=C",
                  "--auth-local=trust", "--auth-host=reject")
        logger.info("created the PostgreSQL cluster %s", self.cluster)

    def _write_config(self) -> None:
        """Settings re-written before every start (the socket folder follows the data directory if it moves)."""
        conf = self.cluster / "postgresql.conf"
        include = "include_if_exists = 'geovigie.conf'"
        text = conf.read_text(encoding="utf-8")
        if include not in text:
            conf.write_text(text + f"\n{include}\n", encoding="utf-8")
        socket = str(self.socket_dir).replace("'", "''")
        (self.cluster / "geovigie.conf").write_text(
            "# written by geovigie: a private cluster reached only through its Unix socket\n"
            f"listen_addresses = ''\nunix_socket_directories = '{socket}'\nunix_socket_permissions = 0700\n"
            f"port = {self.port}\n", encoding="utf-8")

    def start(self) -> str:
        """Create the cluster if needed, start it unless it runs, prepare pgstac; returns the database URL.

        Raises:
            PostgresNotInstalledError: initdb/pg_ctl or PostGIS missing.
            DatabaseError: the server does not start (the message quotes its log).
        """
        find_bin_dir(self._bin_dir)
        with self._locked():
            fresh = not (self.cluster / "PG_VERSION").is_file()
            if fresh:
                self._initdb()
            if not self.is_running():
                self._write_config()
                self.log.touch()
                self._give_to_server_user(self.socket_dir, self.log, self.cluster)
                self.socket_dir.chmod(0o700)
                self._run("pg_ctl", "start", "-w", "-t", str(int(self.timeout)), "-D", str(self.cluster),
                          "-l", str(self.log))
                self.started = True
                self._pid = self._postmaster_pid()
                logger.info("started PostgreSQL on %s", self.socket_dir)
            self._ensure_database()
            prepare_database(self.url)
        return self.url

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

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.cluster / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        """Stop the server if this object started it (a server another process started keeps running).

        A server whose folder was deleted under it (pg_ctl cannot reach it any more) is stopped by its process id.
        """
        if self.started and self.is_running():
            self._run("pg_ctl", "stop", "-m", "fast", "-w", "-t", str(int(self.timeout)), "-D", str(self.cluster))
        elif self.started and self._pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self._pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
        if self.started:
            # pg_ctl returns once postmaster.pid is gone; the exiting server removes its socket lock just after, and
            # a start in between fails ("lock file ... already exists"): wait for it too
            lock = self.socket_dir / f".s.PGSQL.{self.port}.lock"
            deadline = time.monotonic() + self.timeout
            while lock.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        self.started, self._pid = False, None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class StacDatabase:
    """The database of the STAC API for one configuration: the server at `url`, or the private cluster under
    `data_dir/postgres`. Started (and pgstac prepared) on first use; `stop()` stops the private cluster only when
    this process started it. One per process and location (`stac_database`): the stores that publish and the
    service that serves share it, so whoever started the cluster also stops it.
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
        """Whether this process started the private cluster (and so stops it)."""
        return self.cluster is not None and self.cluster.started

    def url(self) -> str:
        """The database URL, starting the private cluster or preparing pgstac in the server on first call.

        Raises:
            PostgresNotInstalledError: no PostgreSQL programs or PostGIS.
            DatabaseError: the server cannot be started or reached.
        """
        with self._lock:
            if self._ready is None:
                if self.cluster is not None:
                    if not self._exit_hook:  # a process that ends without stopping it still stops its server
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
        """Stop the private cluster if this process started it; the next `url()` starts it again."""
        with self._lock:
            if self.cluster is not None and self.cluster.started:
                self.cluster.stop()
                logger.info("stopped PostgreSQL in %s", self.cluster.root)
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
