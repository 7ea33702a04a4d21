"""`geovigie keys create|list|revoke`: the API keys that writes (jobs, feedback, STAC transactions) require."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from geovigie.terminal import stderr_console

keys_app = typer.Typer(help="API keys for writes (jobs, feedback, STAC transactions); stored hashed.",
                       no_args_is_help=True)
err = stderr_console()


@contextlib.contextmanager
def _database(settings: Any) -> Iterator[None]:
    """Stop the private PostgreSQL afterwards if this command started it."""
    from geovigie.tiles import stop_results_database

    try:
        yield
    finally:
        stop_results_database(settings)


def register(app: typer.Typer, friendly_errors, settings_factory) -> None:  # noqa: ANN001
    """Add `keys` to the main app (errors go through the app's one error boundary)."""
    app.add_typer(keys_app, name="keys")

    @keys_app.command("create")
    @friendly_errors
    def create(
        owner: Annotated[str, typer.Option(help="Who holds the key (shown as the author of their feedback).")],
        scope: Annotated[str, typer.Option(metavar="write|read",
                                           help="write: jobs, feedback (and reads); read: reads only.")] = "write",
    ) -> None:
        """Create a key and print it once (only its hash is kept: a lost key is revoked and replaced)."""
        from geovigie.service.auth import create_key

        settings = settings_factory()
        with _database(settings):
            key, secret = create_key(settings, owner, scope)
        typer.echo(secret)
        err.print(f"key {key.id} for {key.owner} ({scope}); keep it now, it is not shown again")

    @keys_app.command("list")
    @friendly_errors
    def list_(as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False) -> None:
        """List keys (id, owner, scopes, dates); never their secrets."""
        from geovigie.service.auth import list_keys

        settings = settings_factory()
        with _database(settings):
            keys = list_keys(settings)
        for key in keys:
            row = key.as_dict()
            if as_json:
                typer.echo(json.dumps(row))
            else:
                state = f"revoked {row['revoked']}" if key.revoked else "active"
                typer.echo(f"{key.id}  {key.owner}  {','.join(key.scopes)}  created {row['created']}  {state}  "
                           f"last used {row['last_used'] or 'never'}")
        if not keys:
            err.print("no key yet: geovigie keys create --owner NAME")

    @keys_app.command("revoke")
    @friendly_errors
    def revoke(key_id: Annotated[str, typer.Argument(help="The key's id (first column of `keys list`).")]) -> None:
        """Revoke a key: its requests are refused (403) from now on."""
        from geovigie.service.auth import revoke_key

        settings = settings_factory()
        with _database(settings):
            key = revoke_key(settings, key_id)
        err.print(f"key {key.id} of {key.owner} revoked")
