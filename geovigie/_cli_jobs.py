"""`geovigie jobs worker`: run the jobs submitted with POST /jobs, in a process of its own (`geovigie serve` starts
one unless `job_runner` is false)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from geovigie.terminal import stderr_console

jobs_app = typer.Typer(help="Jobs submitted over HTTP (POST /jobs): run them.", no_args_is_help=True)
err = stderr_console()


def register(app: typer.Typer, friendly_errors, settings_factory) -> None:  # noqa: ANN001
    """Add `jobs` to the main app (errors go through the app's one error boundary)."""
    app.add_typer(jobs_app, name="jobs")

    @jobs_app.command("worker")
    @friendly_errors
    def worker(
        poll: Annotated[float, typer.Option(help="Seconds between looks at the queue when it is empty.", min=0.1)
                        ] = 2.0,
        until_empty: Annotated[bool, typer.Option("--until-empty", help="Stop when no job is left.")] = False,
        scheduler: Annotated[str | None, typer.Option(help="Dask scheduler, e.g. tcp://host:8786 (default: "
                                                           "settings, else a local cluster per job).")] = None,
        parent_pid: Annotated[int | None, typer.Option("--parent-pid", hidden=True)] = None,
    ) -> None:
        """Claim queued jobs (and jobs a stopped runner left) one at a time and run them; Ctrl-C/SIGTERM stops."""
        from geovigie.tiles import stop_results_database
        from geovigie.workflows import run_jobs, worker_id

        if parent_pid is not None:
            _stop_when_orphaned(parent_pid)
        settings = settings_factory(dask_scheduler=scheduler)
        err.print(f"job runner {worker_id()} on {settings.data_dir} (Ctrl-C to stop)")
        try:
            count = run_jobs(settings, poll_s=poll, until_empty=until_empty)
        finally:
            stop_results_database(settings)
        err.print(f"{count} jobs run")


def _stop_when_orphaned(parent: int, interval_s: float = 1.0) -> None:
    """SIGTERM this process once `parent` is no longer its parent (a `serve` killed with -9 cannot stop its runner,
    even while the runner is still starting): the runner then unwinds as on Ctrl-C, gives back its database lease,
    and the private PostgreSQL can stop."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="geovigie-parent-watch", daemon=True).start()


@contextlib.contextmanager
def worker_process(settings: Any) -> Iterator[subprocess.Popen[bytes] | None]:
    """`geovigie jobs worker` beside the service (None when `job_runner` is off or there is no PostgreSQL);
    stopped (SIGTERM, then SIGKILL) when the service stops. It reads the same settings (environment, TOML) and logs
    at the same level (-v / -q)."""
    from geovigie.tiles import stac_backend

    if not settings.job_runner or stac_backend(settings) != "pgstac":
        yield None
        return
    from geovigie.terminal import verbosity_flags

    process = subprocess.Popen([sys.executable, "-c", "from geovigie.cli import app; app()", *verbosity_flags(),
                                "jobs", "worker",
                                "--parent-pid", str(os.getpid())])
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
