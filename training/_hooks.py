"""Hooks of the epoch loop: keep the best epoch, stop early, checkpoint, log. Each sees the loop's state after an
epoch and may change it; the loop runs them in order (checkpoint after the stopping decision, so a resumed run
knows it had stopped).
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from geovigie.atomic import atomic_path
from geovigie.errors import GeovigieError
from geovigie.training._parallel import Distributed

log = logging.getLogger(__name__)
CHECKPOINT = "checkpoint.pt"
METRICS_CSV = "metrics.csv"
HIGHER_IS_BETTER = ("val_miou", "val_accuracy")


class CheckpointError(GeovigieError, ValueError):
    """A checkpoint cannot be resumed from: corrupt, truncated, or written by another config."""


@dataclass
class LoopState:
    """What the loop has done: epochs run, their rows, the best epoch so far and whether to stop."""

    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_value: float = float("inf")
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    stop: bool = False
    resumed_from: int = 0


class Hook:
    """A loop hook; every method is optional."""

    def on_epoch_end(self, state: LoopState, row: dict[str, float]) -> None:
        """After each epoch (rows already in `state.history`)."""

    def on_end(self, state: LoopState) -> None:
        """Once, after the last epoch (or after an early stop)."""


class KeepBest(Hook):
    """Remember the weights of the epoch with the best `monitor` (training loss when there is no validation) and
    put them back at the end."""

    def __init__(self, network: torch.nn.Module, monitor: str) -> None:
        self.network, self.monitor = network, monitor

    def on_epoch_end(self, state: LoopState, row: dict[str, float]) -> None:
        value = row.get(self.monitor, row["train_loss"])
        if self.monitor in HIGHER_IS_BETTER and self.monitor in row:
            value = -value
        if value < state.best_value:
            state.best_value, state.bad_epochs, state.best_epoch = value, 0, state.epoch
            state.best_state = {k: v.detach().cpu().clone() for k, v in self.network.state_dict().items()}
        else:
            state.bad_epochs += 1

    def on_end(self, state: LoopState) -> None:
        if state.best_state is not None:
            self.network.load_state_dict(copy.deepcopy(state.best_state))
        self.network.eval()


class EarlyStopping(Hook):
    """Stop after `patience` epochs without a better monitored value (0: never)."""

    def __init__(self, patience: int) -> None:
        self.patience = patience

    def on_epoch_end(self, state: LoopState, row: dict[str, float]) -> None:
        if self.patience and state.bad_epochs >= self.patience:
            state.stop = True
            log.info("early stopping after epoch %d (best epoch %d)", state.epoch, state.best_epoch)


def fingerprint(config: dict[str, Any]) -> str:
    """SHA-256 of the optimisation-relevant config: a checkpoint resumes only the run that wrote it."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def load_checkpoint(path: Path, config_hash: str) -> dict[str, Any]:
    """Read a checkpoint written by `fit` for the same config.

    Raises:
        CheckpointError: unreadable (corrupt, truncated), not a geovigie checkpoint, or from another config.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError... on damaged files
        raise CheckpointError(f"{path}: corrupt checkpoint ({type(error).__name__}: {str(error).splitlines()[0]}); "
                              "delete it to train from scratch") from None
    if not isinstance(state, dict) or "model" not in state or "epoch" not in state:
        raise CheckpointError(f"{path}: not a geovigie training checkpoint; delete it to train from scratch")
    if state.get("config_hash") != config_hash:
        raise CheckpointError(f"{path}: written by another experiment config; resume with the same config, or "
                              "remove --resume (or the checkpoint) to start over")
    return state


class Checkpoint(Hook):
    """Rank 0 writes `checkpoint.pt` atomically after every epoch: weights, optimiser, schedule, scaler, RNG and
    the loop state, so that `restore` continues to the same weights as an uninterrupted run (on CPU)."""

    def __init__(self, path: Path, config_hash: str, dist: Distributed, network: torch.nn.Module,
                 optimiser: torch.optim.Optimizer, schedule: Any, scaler: torch.amp.GradScaler) -> None:
        self.path, self.config_hash, self.dist = path, config_hash, dist
        self.network, self.optimiser, self.schedule, self.scaler = network, optimiser, schedule, scaler

    def restore(self, state: LoopState) -> None:
        """Load the checkpoint into the network, optimiser, schedule, scaler, RNG and `state`."""
        saved = load_checkpoint(self.path, self.config_hash)
        self.network.load_state_dict(saved["model"])
        self.optimiser.load_state_dict(saved["optimiser"])
        self.schedule.load_state_dict(saved["schedule"])
        self.scaler.load_state_dict(saved["scaler"])
        torch.set_rng_state(saved["torch_rng"])
        state.history, state.epoch = list(saved["history"]), int(saved["epoch"])
        state.best_value, state.best_state = float(saved["best_value"]), saved["best_model"]
        state.bad_epochs, state.best_epoch = int(saved["bad_epochs"]), int(saved["best_epoch"])
        state.resumed_from, state.stop = state.epoch, bool(saved.get("stopped_early"))

    def on_epoch_end(self, state: LoopState, row: dict[str, float]) -> None:
        if not self.dist.main:
            return
        buffer = io.BytesIO()
        torch.save({
            "epoch": state.epoch, "model": self.network.state_dict(), "optimiser": self.optimiser.state_dict(),
            "schedule": self.schedule.state_dict(), "scaler": self.scaler.state_dict(),
            "torch_rng": torch.get_rng_state(), "history": state.history, "best_value": state.best_value,
            "best_model": state.best_state, "best_epoch": state.best_epoch, "bad_epochs": state.bad_epochs,
            "stopped_early": state.stop, "config_hash": self.config_hash}, buffer)
        with atomic_path(self.path) as tmp:
            tmp.write_bytes(buffer.getvalue())


def write_metrics_csv(path: Path, history: list[dict[str, float]]) -> None:
    """Rewrite `metrics.csv` (one row per epoch) atomically."""
    if not history:
        return
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)


class MetricsLog(Hook):
    """Rank 0 rewrites `metrics.csv` after every epoch and, when tensorboard is installed, logs the scalars."""

    def __init__(self, run_dir: Path, dist: Distributed) -> None:
        self.run_dir, self.enabled = run_dir, dist.main
        self.writer = self._tensorboard() if self.enabled else None

    def _tensorboard(self) -> Any:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            return None
        return SummaryWriter(str(self.run_dir / "tensorboard"))

    def on_epoch_end(self, state: LoopState, row: dict[str, float]) -> None:
        if not self.enabled:
            return
        write_metrics_csv(self.run_dir / METRICS_CSV, state.history)
        if self.writer is not None:
            for key, value in row.items():
                if key != "epoch":
                    self.writer.add_scalar(key, value, state.epoch)

    def on_end(self, state: LoopState) -> None:
        if self.writer is not None:
            self.writer.close()


class Barrier(Hook):
    """Every rank waits for rank 0's files before the next epoch."""

    def __init__(self, dist: Distributed) -> None:
        self.dist = dist

    def on_epoch_end(self, state: LoopState, row: dict[str, float]) -> None:
        self.dist.barrier()


class EachEpoch(Hook):
    """Call `callback(epochs done)` after every epoch (progress reports, tests that interrupt a run)."""

    def __init__(self, callback: Callable[[int], None]) -> None:
        self.callback = callback

    def on_epoch_end(self, state: LoopState, row: dict[str, float]) -> None:
        self.callback(state.epoch)
