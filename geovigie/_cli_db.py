"""`geovigie db start|stop|status`: the private PostgreSQL of the data directory, seen and run by an operator."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from geovigie.terminal import stderr_console, stdout_console

err = stderr_console()
out = stdout_console()

NOT_RUNNING = 3
"""Exit code of `db status` when the server is not running (as `pg_ctl status`)."""


def _cluster(settings: Any) -> Any:
    from geovigie.errors import InvalidInputError
    from geovigie.postgres import PrivatePostgres
    from geovigie.redaction import redact

    if settings.database_url:
        raise InvalidInputError(f"GEOVIGIE_DATABASE_URL is set ({redact(settings.database_url)}): that server is "
                                "not geovigie's to start, stop or watch; unset it to manage the private PostgreSQL")
    return PrivatePostgres(settings.data_dir / "postgres", bin_dir=settings.postgres_bin_dir)


def register(app: typer.Typer, friendly_errors, settings_factory) -> None:  # noqa: ANN001
    """Add the `db` group to the main app (errors go through the app's one error boundary)."""
    db_app = typer.Typer(help="The private PostgreSQL (STAC API database) of the data directory.",
                         no_args_is_help=True)
    app.add_typer(db_app, name="db")

    @db_app.command("start")
    @friendly_errors
    def start() -> None:
        """Start the server and keep it up until `geovigie db stop` (an operator lease)."""
        cluster = _cluster(settings_factory())
        url = cluster.start(operator=True)
        err.print(f"PostgreSQL running for {cluster.root}: {url}", soft_wrap=True)

    @db_app.command("stop")
    @friendly_errors
    def stop(force: Annotated[bool, typer.Option(help="Stop it even while other processes use it.")] = False
             ) -> None:
        """Stop the server; refused while other live processes use it, unless --force."""
        cluster = _cluster(settings_factory())
        err.print("stopped" if cluster.shutdown(force=force) else "not running")

    @db_app.command("status")
    @friendly_errors
    def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
        """Running or not, pid, socket, watcher and the processes using it (stale leases are removed). Exit code
        3 when it is not running."""
        cluster = _cluster(settings_factory())
        found = cluster.status()
        users = [{"pid": lease.pid, "operator": lease.operator, "command": lease.command, "since": lease.since}
                 for lease in found.leases]
        if as_json:
            out.print(json.dumps({"running": found.running, "pid": found.pid, "cluster": str(found.cluster),
                                  "socket_dir": str(found.socket_dir) if found.socket_dir else None,
                                  "url": found.url, "watcher_pid": found.watcher_pid, "users": users,
                                  "reaped": [lease.pid for lease in found.reaped]}))
        else:
            out.print(f"PostgreSQL: {'running, pid ' + str(found.pid) if found.running else 'not running'}")
            out.print(f"cluster: {found.cluster}")
            if found.running:
                out.print(f"socket: {found.socket_dir}\nurl: {found.url}\nwatcher: "
                          f"{'pid ' + str(found.watcher_pid) if found.watcher_pid else 'none'}")
            out.print(f"users: {len(found.leases)}")
            for lease in found.leases:
                out.print(f"  {lease.describe()}")
            if found.reaped:
                out.print(f"removed {len(found.reaped)} stale lease(s) of dead processes: "
                          + ", ".join(f"pid {lease.pid}" for lease in found.reaped))
        if not found.running:
            raise typer.Exit(NOT_RUNNING)
