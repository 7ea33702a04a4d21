"""`geovigie model ...`: inspect a bundle, export it to ONNX, write its STAC MLM item."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from geovigie.terminal import stderr_console

model_app = typer.Typer(help="Model bundles: card, ONNX export, STAC Machine Learning Model item.",
                        no_args_is_help=True)
err = stderr_console()

BundleArgument = Annotated[Path | None, typer.Argument(help="Bundle folder (default: the shipped land-cover bundle).")]


def register(app: typer.Typer, friendly_errors, settings_factory) -> None:  # noqa: ANN001
    """Add `model` to the main app (errors go through the app's one error boundary)."""
    app.add_typer(model_app, name="model")

    @model_app.command("info")
    @friendly_errors
    def info(bundle: BundleArgument = None) -> None:
        """Print the card's essentials: format, kind, classes, scene normalisation, calibration, ONNX export, and the
        candidates' table the bundle was chosen from."""
        from geovigie.models import load_bundle

        loaded = load_bundle(bundle)
        card = loaded.card
        summary = {
            "id": loaded.id, "path": str(loaded.path), "format_version": card.format_version,
            "kind": card.kind, "bands": card.bands, "inputs": card.describe_dates(),
            "product_level": card.product_level,
            "classes": [c.name for c in card.classes],
            "scene_normalisation": card.scene_normalisation.describe() if card.scene_normalisation else None,
            "calibration": card.calibration.model_dump() if card.calibration else None,
            "onnx": card.onnx.model_dump() if card.onnx else None,
            "selection": card.metrics.get("selection"),
        }
        typer.echo(json.dumps(summary, indent=1))

    @model_app.command("export-onnx")
    @friendly_errors
    def export(bundle: BundleArgument = None,
               opset: Annotated[int, typer.Option(help="ONNX opset version.")] = 17) -> None:
        """Export the network to model.onnx in the bundle (card and item.json record it), for --runtime onnx."""
        from geovigie.models import export_onnx

        path = export_onnx(bundle if bundle is not None else _shipped(), opset=opset)
        err.print(f"ONNX model written to {path}")

    @model_app.command("item")
    @friendly_errors
    def item(bundle: BundleArgument = None,
             out: Annotated[Path | None, typer.Option(help="Write here instead of the bundle's item.json.")] = None
             ) -> None:
        """Write the card as a STAC item with the Machine Learning Model extension (item.json)."""
        from geovigie.atomic import write_json_atomic
        from geovigie.models import load_bundle, mlm_item

        loaded = load_bundle(bundle)
        target = out or loaded.path / "item.json"
        write_json_atomic(target, mlm_item(loaded).to_dict(include_self_link=False))
        err.print(f"STAC MLM item written to {target}")


def _shipped() -> Path:
    from geovigie.models import DEFAULT_BUNDLE

    return DEFAULT_BUNDLE
