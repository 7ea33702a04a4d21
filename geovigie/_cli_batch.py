"""`geovigie batch CONFIG`: run the configured tasks on every new item of a collection, once or watching."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from geovigie.paths import printable
from geovigie.terminal import print_table, stderr_console

err = stderr_console()

PARTIAL_FAILURE = 3
"""Exit code when the pass ran but some jobs failed (their errors are in the state file)."""


def register(app: typer.Typer, friendly_errors, settings_factory) -> None:  # noqa: ANN001
    """Add `batch` to the main app (errors go through the app's one error boundary)."""

    @app.command("batch")
    @friendly_errors
    def batch(
        config: Annotated[Path, typer.Argument(help="Batch TOML: source, collection, area, filters, and tasks of kind "
                                                    "landcover (a model bundle), ndvi (Theia L2A) or temperature "
                                                    "(Landsat); jobs/slovenia.toml is an example.")],
        dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would run; write nothing.")] = False,
        watch: Annotated[bool, typer.Option("--watch/--once", help="Poll for new items until Ctrl-C/SIGTERM.")
                         ] = False,
        interval: Annotated[float, typer.Option(help="Seconds between passes with --watch.", min=0)] = 600.0,
        scheduler: Annotated[str | None, typer.Option(help="Dask scheduler, e.g. tcp://host:8786 "
                                                           "(default: settings, else a local cluster).")] = None,
        progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Draw a progress bar.")] = True,
    ) -> None:
        """Run every task of CONFIG on each new or changed item of its search; publish the results."""
        from geovigie.workflows import BatchReport, load_batch_config, run_batch, watch_batch

        loaded = load_batch_config(config)
        settings = settings_factory()
        options: dict[str, Any] = {"scheduler": scheduler, "progress": progress and not dry_run, "dry_run": dry_run,
                   "log": lambda line: err.print(line, highlight=False, soft_wrap=True)}
        if watch and not dry_run:
            err.print(f"watching {', '.join(loaded.collections)} every {interval:g} s (Ctrl-C to stop)")
            last = watch_batch(loaded, settings, interval=interval, on_pass=_summary, **options)
            err.print("stopped")
        else:
            last = run_batch(loaded, settings, **options)
            if dry_run:
                _listing(last)
            else:
                _summary(last)
        if isinstance(last, BatchReport) and not last.ok:
            raise typer.Exit(PARTIAL_FAILURE)


def _listing(report) -> None:  # noqa: ANN001 - a BatchReport
    rows = [(printable(job.item.id), job.task.kind, job.reason) for job in report.jobs]
    print_table(err, ("item", "task", "why"), rows,
                title=f"{len(report.jobs)} jobs would run ({report.items} items, {report.up_to_date} jobs up to date)")


def _summary(report) -> None:  # noqa: ANN001 - a BatchReport
    done, failed = len(report.published), len(report.failed)
    err.print(f"{report.name}: {report.items} items, {done + failed} new jobs: {done} done, {failed} failed; "
              f"{report.up_to_date} up to date; state {report.state_path}", highlight=False, soft_wrap=True)
    for job, error in report.failed:
        err.print("failed:", style="bold red", end=" ")
        err.print(f"{printable(job.item.id)} {job.task.kind}: {printable(error, 2000)}", soft_wrap=True)
