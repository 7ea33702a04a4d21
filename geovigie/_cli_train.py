"""`geovigie train CONFIG`: one experiment file in, one model bundle out (plus checkpoints and metrics.csv)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geovigie._cli_help import shipped_names
from geovigie.terminal import print_table, stderr_console

err = stderr_console()


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


_CONFIGS = [f"{name}.toml" for name in shipped_names("geovigie.training", "configs", ".toml")]
NETWORK_CONFIG = "landcover-s2l1c-slovenia-unet.toml"
"""The recipe of the shipped network bundle (the best U-Net on held-out dates), in training/configs/."""


def shipped_config(name: str) -> Path:
    """A config shipped in geovigie/training/configs/."""
    import geovigie.training

    return Path(geovigie.training.__file__).resolve().parent / "configs" / name


def register(app: typer.Typer, friendly_errors, settings_factory) -> None:  # noqa: ANN001
    """Add `train` and its alias `train-landcover` to the main app (errors go through the app's one boundary)."""

    @app.command("train")
    @friendly_errors
    def train(
        config: Annotated[Path, typer.Argument(help="Experiment TOML; shipped in training/configs/: "
                                                    f"{', '.join(_CONFIGS)}.")],
        resume: Annotated[bool, typer.Option("--resume", help="Continue from the run folder's checkpoint.")] = False,
        device: Annotated[str | None, typer.Option(metavar="auto|cpu|cuda", help="Default: the settings'.")] = None,
        out: Annotated[Path | None, typer.Option(help="Run folder (default: DATA_DIR/training/NAME-vVERSION).")] = None,
        bundle: Annotated[Path | None, typer.Option(help="Write the bundle here (default: OUT/bundle).")] = None,
        quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
        all_folds: Annotated[bool, typer.Option(
            "--all-folds", help="Hold out every date (or area) in turn, then train the bundle on all of them "
                                "(same as split.holdout = 'all').")] = False,
    ) -> None:
        """Train a segmentation model from imagery and labels described by CONFIG; write a bundle for `predict`.

        Under torchrun (`torchrun --nproc-per-node N $(which geovigie) train CONFIG`) the ranks share the work
        (NCCL on CUDA, gloo on CPU) and rank 0 writes.
        """
        from geovigie.training import load_config, run_experiment, summary_rows

        settings = settings_factory(device=device)
        experiment = load_config(config)
        run_dir = out or settings.data_dir / "training" / f"{experiment.output.name}-v{experiment.output.version}"
        command = f"geovigie train {config}" + (" --all-folds" if all_folds else "")
        result = run_experiment(experiment, run_dir, resume=resume, device=settings.device, progress=not quiet,
                                bundle_dir=bundle, command=command, all_folds=all_folds)
        if result is None:  # not rank 0
            return
        rows = [(row["set"], row["model"], _fmt(row["overall_accuracy"]), _fmt(row["miou"]), str(row["pixels"]))
                for row in summary_rows(result.metrics)]
        print_table(err, ("set", "model", "overall accuracy", "mIoU", "pixels"), rows,
                    title=f"{experiment.output.name} v{experiment.output.version}: held-out metrics")
        if result.bundle.card.limitations:
            err.print(f"limitations: {result.bundle.card.limitations}", soft_wrap=True)
        if result.fit.history:
            err.print(f"epochs run: {len(result.fit.history)} (kept epoch {result.fit.best_epoch}); "
                      f"metrics: {result.run_dir / 'metrics.csv'}")
        labels = result.bundle.card.provenance.get("labels", {})
        if labels.get("field_records"):  # labels from the service's feedback export
            per_class = ", ".join(f"{k} {n}" for k, n in labels["field_records_per_class"].items())
            err.print("field records: " + ", ".join(f"{n} {k}" for k, n in labels["field_records"].items())
                      + f"; learned from {labels['field_records_learned_from']} ({per_class})", soft_wrap=True)
        if "selection" in result.metrics:
            selection = result.metrics["selection"]
            scope = selection.get("scope")
            among = (f"; the best of {' / '.join(scope['kinds'])}, overall winner {scope['overall_winner']}"
                     if scope else "")
            err.print(f"shipped: {selection['winner']} ({result.bundle.card.kind}{among})")
        err.print(f"bundle written to {result.bundle.path}")

    @app.command("train-landcover")
    @friendly_errors
    def train_landcover(
        out: Annotated[Path, typer.Option(help="Bundle folder to write.")] = Path(
            "models/bundles/landcover-s2l1c-slovenia-unet-v1"),
        device: Annotated[str | None, typer.Option(metavar="auto|cpu|cuda", help="Default: the settings'.")] = None,
        quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    ) -> None:
        """Retrain the network land-cover bundle: `geovigie train` with
        training/configs/landcover-s2l1c-slovenia-unet.toml (the best U-Net on held-out dates; run folder: a
        temporary one; only the bundle is kept)."""
        import tempfile

        with tempfile.TemporaryDirectory(prefix="geovigie-train-") as run:
            train(shipped_config(NETWORK_CONFIG), resume=False, device=device, out=Path(run), bundle=out, quiet=quiet,
                  all_folds=False)
