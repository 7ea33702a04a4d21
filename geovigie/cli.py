"""The `geovigie` command line (typer). Domain errors print one line and exit 2, without a traceback."""

from __future__ import annotations

import errno
import functools
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError

from geovigie._cli_batch import register as register_batch
from geovigie._cli_catalog import register as register_catalog
from geovigie._cli_db import register as register_db
from geovigie._cli_diagnose import register as register_diagnostics
from geovigie._cli_help import CONTEXT_SETTINGS, ConventionalGroup, shipped_names, version_callback
from geovigie._cli_jobs import register as register_jobs
from geovigie._cli_jobs import worker_process
from geovigie._cli_keys import register as register_keys
from geovigie._cli_model import register as register_model
from geovigie._cli_ortho import register as register_ortho
from geovigie._cli_train import register as register_train
from geovigie._signals import Terminated, terminate_as_interrupt
from geovigie.config_file import describe_errors
from geovigie.errors import GeovigieError, InvalidInputError
from geovigie.redaction import install_log_redaction, redact
from geovigie.settings import Settings, get_settings
from geovigie.terminal import (
    VERBOSITY_VARIABLE,
    configure_logging,
    log_level,
    set_verbosity,
    show_warnings_as_lines,
    stderr_console,
    verbosity,
)

app = typer.Typer(help="geovigie: imagery to map layers for local authorities (`geovigie COMMAND -h`: its options).",
                  no_args_is_help=True,
                  pretty_exceptions_enable=False, cls=ConventionalGroup, context_settings=CONTEXT_SETTINGS)
catalog_app = typer.Typer(help="Build and search STAC catalogs.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
err = stderr_console()
F = TypeVar("F", bound=Callable[..., Any])
SYSTEM_ERRORS = {
    errno.ENOSPC: "no space left on the device: free some or write elsewhere",
    errno.EDQUOT: "disk quota exceeded: free some space or write elsewhere",
    errno.EFBIG: "file too large for this process's file size limit (ulimit -f)",
    errno.EROFS: "read-only file system: write elsewhere",
    errno.EACCES: "permission denied (a folder that is read-only for this user?)",
    errno.EPERM: "operation not permitted (an immutable file or folder, chattr +i?)",
}
"""Operating system errors that are the machine's state, not a bug: one `error:` line each, exit code 2."""
_SYSTEM_TEXTS = {"No space left on device": errno.ENOSPC, "Disk quota exceeded": errno.EDQUOT,
                 "File too large": errno.EFBIG, "Read-only file system": errno.EROFS}
_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}
_NOISY_LOGGERS = ("distributed.worker", "rasterio._env", "rasterio._err", "rasterio._io", "rasterio")
"""Loggers that repeat a full disk once per task or GDAL call (a Dask task's traceback, `_tiffWriteProc: ...`)."""


class _SystemErrorEcho(logging.Filter):
    """Drops the records that only echo a full disk or file size limit: the command's `error:` line says it once."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in _SYSTEM_TEXTS)


_ECHO_FILTER = _SystemErrorEcho()


def _quiet_system_error_echoes() -> None:
    for name in _NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if _ECHO_FILTER not in logger.filters:
            logger.addFilter(_ECHO_FILTER)


def friendly_errors(func: F) -> F:
    """Turn geovigie errors and invalid settings into `error: <message>` and exit code 2.

    A full disk, a file size limit, a read-only or immutable folder (`SYSTEM_ERRORS`, found anywhere in the
    exception's chain) is one `error:` line too. SIGTERM (and SIGHUP) unwind like Ctrl-C, so temporary files are
    removed; the command then exits with 128 + the signal number. Anything else is a bug: it keeps its traceback
    and Python's exit code 1. Messages and log records are redacted (no password or token is printed).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        install_log_redaction()
        _quiet_system_error_echoes()
        try:
            with terminate_as_interrupt():
                return func(*args, **kwargs)
        except Terminated as stop:
            err.print("error:", style="bold red", end=" ")
            err.print(f"{stop}; temporary files removed", soft_wrap=True)
            raise typer.Exit(stop.exit_code) from None
        except KeyboardInterrupt:
            err.print("error:", style="bold red", end=" ")
            err.print("interrupted; temporary files removed", soft_wrap=True)
            raise typer.Exit(128 + signal.SIGINT) from None
        except GeovigieError as error:
            _fail(str(error))
        except ValidationError as error:  # settings from geovigie.toml, GEOVIGIE_* or options
            _fail(f"invalid settings: {describe_errors(error, 'settings', env_prefix='GEOVIGIE_')}")
        except Exception as error:
            system = system_error(error, kwargs.get("out"))
            if system is None:
                raise
            _fail(system)

    return wrapper  # type: ignore[return-value]


def system_error(error: BaseException, out: Any = None) -> str | None:
    """The one-line message for an operating system error in `error`'s chain (`SYSTEM_ERRORS`), else None.

    It names the file when the error does, else the command's output folder `out` for errors that only writing
    meets (full disk, size limit, read-only file system).
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = current.errno if isinstance(current, OSError) else None
        if code not in SYSTEM_ERRORS:
            code = next((value for text, value in _SYSTEM_TEXTS.items() if text in str(current)), None)
        if code in SYSTEM_ERRORS:
            filename = getattr(current, "filename", None)
            where = f"{filename}: " if filename else f"writing in {out}: " if out and code in _WRITE_ERRORS else ""
            return f"{where}{SYSTEM_ERRORS[code]}"
        current = current.__cause__ or current.__context__
    return None


def _fail(message: str) -> None:
    err.print("error:", style="bold red", end=" ")
    err.print(redact(message).replace("\n", " "), soft_wrap=True)
    raise typer.Exit(2)


_BUNDLES = shipped_names("geovigie.models", "bundles")


def check_port_free(host: str, port: int) -> None:
    """Refuse a port another process listens on, before printing any URL (uvicorn would fail after it).

    Raises:
        InvalidInputError: the port is in use, or not this user's to open, or the host is not this machine's.
    """
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise InvalidInputError(f"--host {host}: not an address of this machine ({error.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a closing socket is no obstacle
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                other = port + 1 if port < 65535 else 8080
                raise InvalidInputError(f"--port {port}: {host}:{port} is already in use (another `geovigie serve`?); "
                                        f"stop it or choose another port, e.g. --port {other}") from None
            if error.errno in (errno.EACCES, errno.EPERM):
                raise InvalidInputError(f"--port {port}: not allowed to listen on {host}:{port} (ports below 1024 "
                                        "need privileges); choose another port") from None
            if error.errno == errno.EADDRNOTAVAIL:
                raise InvalidInputError(f"--host {host}: not an address of this machine") from None
            raise


def _settings(**overrides: Any) -> Settings:
    return get_settings(**{k: v for k, v in overrides.items() if v is not None})


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", "-V", callback=version_callback, is_eager=True,
                                          help="Print the version (geovigie X.Y.Z) and exit.")] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, show_default=False,
                                         help="More log lines: -v info, -vv debug (and warnings' source lines).")
                       ] = 0,
    quiet: Annotated[int, typer.Option("--quiet", "-q", count=True, show_default=False,
                                       help="Fewer log lines: -q errors only.")] = 0,
) -> None:
    """Options of every command: log level, version."""
    set_verbosity(verbose - quiet)
    configure_logging()
    show_warnings_as_lines()


register_diagnostics(app, friendly_errors, _settings)
register_batch(app, friendly_errors, _settings)
register_model(app, friendly_errors, _settings)
register_train(app, friendly_errors, _settings)
register_db(app, friendly_errors, _settings)
register_keys(app, friendly_errors, _settings)
register_jobs(app, friendly_errors, _settings)


@catalog_app.command("build")
@friendly_errors
def catalog_build(
    out: Annotated[Path | None, typer.Option(help="Catalog folder (default: DATA_DIR/catalog).")] = None,
) -> None:
    """Build the local STAC catalog of the sample imagery shipped in data/."""
    from geovigie.catalog.samples import build_sample_catalog

    settings = _settings()
    target = out or settings.catalog_dir
    catalog = build_sample_catalog(settings.sample_data_path(), target)
    count = sum(1 for _ in catalog.get_items(recursive=True))
    err.print(f"wrote {count} items to {target / 'catalog.json'}")
    if out is None:  # the settings' input catalog: its items go into the STAC API too
        from geovigie.tiles import index_inputs, stop_results_database

        try:
            if indexed := index_inputs(settings):
                err.print(f"{indexed} items in the STAC API")
        finally:
            stop_results_database(settings)


register_catalog(app, friendly_errors, _settings)
register_ortho(app, friendly_errors, _settings, catalog_app=catalog_app)


@app.command()
@friendly_errors
def predict(
    input: Annotated[Path, typer.Argument(help="A raster file or a STAC item JSON.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    bundle: Annotated[Path | None, typer.Option(help="Model bundle folder (default: the shipped land cover). Shipped "
                                                     f"in models/bundles/: {', '.join(_BUNDLES)}.")] = None,
    force: Annotated[bool, typer.Option(help="Predict even when bands or product level differ.")] = False,
    bands: Annotated[str | None, typer.Option(help="Band names of the file, comma-separated.")] = None,
    product_level: Annotated[str | None, typer.Option(metavar="L1C|L2A",
                                                      help="Product level, when the file does not record it.")] = None,
    tile_size: Annotated[int | None, typer.Option(help="Tile size in pixels.")] = None,
    overlap: Annotated[int | None, typer.Option(help="Tile overlap in pixels.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Tiles per forward pass.")] = None,
    device: Annotated[str | None, typer.Option(metavar="auto|cpu|cuda", help="Where the network runs.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Recompute even if outputs are up to date.")] = False,
    runtime: Annotated[str | None, typer.Option(
        metavar="auto|torch|onnx", help="auto: ONNX Runtime when the bundle has model.onnx; onnx needs "
                                        "`geovigie model export-onnx BUNDLE` first.")] = None,
    input_scale: Annotated[float | None, typer.Option(
        help="Multiply input values by this first, e.g. 0.0001 for Sentinel-2 digital numbers.")] = None,
    input_offset: Annotated[float | None, typer.Option(help="Then add this, e.g. -0.1 for the L2A offset.")] = None,
    previous: Annotated[Path | None, typer.Option(
        help="Two-date bundles (card `dates: 2`): the earlier pass of the same place, on the input's grid "
             "(raster file or STAC item JSON).")] = None,
) -> None:
    """Predict a raster or STAC item tile by tile into COGs, and publish the class map as a layer with a STAC item."""
    from geovigie.workflows import landcover

    settings = _settings(tile_size=tile_size, overlap=overlap, batch_size=batch_size, device=device, runtime=runtime,
                         input_scale=input_scale, input_offset=input_offset)
    layer = landcover(input, settings, bundle=bundle, out_dir=out, force=force, overwrite=overwrite,
                      band_names=bands.split(",") if bands else None, product_level=product_level,
                      previous=previous)
    assets = layer.item.assets
    err.print(f"{layer.detail}\nclasses: {assets['data'].get_absolute_href()}\n"
              f"probabilities: {assets['probabilities'].get_absolute_href()}\nSTAC item: {layer.item_path}")


@app.command()
@friendly_errors
def serve(
    host: Annotated[str | None, typer.Option(metavar="ADDRESS", help="Bind address (default: settings, 127.0.0.1).")
                    ] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port (default: settings, 8000).")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes (they share a tile cache folder, "
                                         "DATA_DIR/tile-cache unless GEOVIGIE_TILE_CACHE_DIR is set).")] = 1,
) -> None:
    """Serve the layers, the STAC results and the map page."""
    import uvicorn

    from geovigie.service import create_app, serve_environment, stac_api_url

    settings = _settings(host=host, port=port)
    check_port_free(settings.host, settings.port)
    stac = stac_api_url(settings)
    err.print(f"map: http://{settings.host}:{settings.port}/   STAC API: {stac or 'off (static catalog only)'}   "
              f"({workers} worker{'s' * (workers > 1)}; Ctrl-C to stop)")
    uvicorn_level = logging.getLevelName(log_level()).lower()  # warning; -v info, -vv debug; -q error
    with worker_process(settings):  # the job runner, in a process of its own (job_runner = false: none)
        if workers == 1:
            from geovigie.service.logs import configure_logging as json_logs

            json_logs(log_level(base=logging.INFO))
            uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=uvicorn_level,
                        log_config=None)
            return
        with serve_environment(settings):  # each worker builds the app from the same settings (and log level)
            os.environ[VERBOSITY_VARIABLE] = str(verbosity())
            uvicorn.run("geovigie.service.app:app_from_environment", factory=True, workers=workers,
                        host=settings.host, port=settings.port, log_level=uvicorn_level, log_config=None)


@app.command()
@friendly_errors
def demo(
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the map afterwards.")] = True,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port of the map (default: settings, 8000; "
                                                                     "`make demo PORT=8080`).")] = None,
) -> None:
    """Run the demo on the shipped real data, then serve the map."""
    from geovigie.demo import run_demo

    settings = _settings(port=port)
    if serve_after:  # a port in use is said before the demo's work, not after it
        check_port_free(settings.host, settings.port)
    run_demo(settings, console=err)
    if serve_after:
        serve(host=None, port=port)
    else:
        err.print(f"open the map with: geovigie serve  ->  http://{settings.host}:{settings.port}/")
