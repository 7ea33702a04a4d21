"""The epoch loop: seeded chips, one optimisation step per batch, validation, then the hooks (keep the best epoch,
early stopping, checkpoint, metrics log). Devices, DDP and mixed precision are set up in `_parallel`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from geovigie.models import Normalisation
from geovigie.progress import progress_bar
from geovigie.training._config import Optimisation
from geovigie.training._hooks import (
    CHECKPOINT,
    Barrier,
    Checkpoint,
    EachEpoch,
    EarlyStopping,
    Hook,
    KeepBest,
    LoopState,
    MetricsLog,
)
from geovigie.training._losses import Loss, make_loss
from geovigie.training._metrics import confusion_matrix, scores
from geovigie.training._parallel import Distributed, Precision, place
from geovigie.training._samplers import ChipDataset, ChipSampler
from geovigie.training._targets import IGNORE

log = logging.getLogger(__name__)


@dataclass
class TrainData:
    """What the loop needs: raw images, the train and validation samplers, normalisation, class weights."""

    images: list[np.ndarray]
    train: ChipSampler
    val: ChipSampler | None
    norm: Normalisation
    weights: torch.Tensor
    class_names: list[str]


@dataclass
class FitResult:
    """History (one row per epoch), the epoch whose weights were kept, and how the run went."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    resumed_from: int = 0
    device: str = "cpu"
    amp: str = "off"


@dataclass
class _Step:
    """What one batch needs: the module to call, its optimiser, schedule, loss and precision."""

    model: torch.nn.Module
    optimiser: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.OneCycleLR
    loss_fn: Loss
    precision: Precision
    device: torch.device
    channels_last: bool

    def batch(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """One optimisation step; the loss."""
        images, labels = _to(self.device, images, labels, self.channels_last)
        with self.precision.autocast():
            loss = self.loss_fn(self.model(images), labels)
        self.optimiser.zero_grad(set_to_none=True)
        scaler = self.precision.scaler
        scaler.scale(loss).backward()
        scaler.step(self.optimiser)
        scaler.update()
        self.schedule.step()
        return float(loss.detach())


def _loader(dataset: torch.utils.data.Dataset, batch: int, device: torch.device) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=False, num_workers=0,
                                       pin_memory=device.type == "cuda")


def _to(device: torch.device, images: torch.Tensor, labels: torch.Tensor,
        channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    images = images.to(device, non_blocking=device.type == "cuda")
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images, labels.to(device, non_blocking=device.type == "cuda")


def validate(network: torch.nn.Module, data: TrainData, opt: Optimisation, device: torch.device, loss_fn: Loss,
             channels_last: bool, precision: Precision) -> dict[str, float]:
    """Loss, mIoU and accuracy on the (deterministic) grid chips of the validation blocks."""
    assert data.val is not None
    dataset = ChipDataset(data.images, data.val, data.val.grid(opt.val_chips), data.norm, None, 0, 0)
    n = len(data.class_names)
    matrix = np.zeros((n, n), dtype=np.int64)
    losses = []
    network.eval()
    with torch.inference_mode():
        for images, labels in _loader(dataset, opt.batch_size, device):
            images, labels = _to(device, images, labels, channels_last)
            with precision.autocast():
                logits = network(images)
            losses.append(float(loss_fn(logits, labels)))
            matrix += confusion_matrix(labels.cpu().numpy(), logits.argmax(1).cpu().numpy(), n, IGNORE)
    network.train()
    result = scores(matrix, data.class_names)
    return {"val_loss": float(np.mean(losses)) if losses else float("nan"),
            "val_miou": float(result["miou"] or 0.0),  # type: ignore[arg-type]
            "val_accuracy": float(result["overall_accuracy"] or 0.0)}  # type: ignore[arg-type]


def fit(network: torch.nn.Module, data: TrainData, opt: Optimisation, device: torch.device, run_dir: Path, *,
        config_hash: str, resume: bool = False, progress: bool = True, dist: Distributed | None = None,
        on_epoch: Callable[[int], None] | None = None) -> FitResult:
    """Train `network` in place for `opt.epochs` epochs (or until early stopping); keep the best epoch's weights.

    Each epoch's chips depend only on (seed, epoch); after every epoch rank 0 writes `checkpoint.pt` (atomically)
    and `metrics.csv`. With `resume`, training continues from the checkpoint and ends with the same weights as an
    uninterrupted run (on CPU). Under torchrun (WORLD_SIZE > 1) gradients are averaged with DDP and each rank
    trains on its share of the epoch's chips.
    """
    dist = dist or Distributed()
    torch.manual_seed(opt.seed)
    precision = Precision.for_device(device, opt.amp)
    channels_last = opt.channels_last and device.type == "cuda"
    model = place(network, device, channels_last, dist)
    optimiser = torch.optim.AdamW(network.parameters(), lr=opt.lr, weight_decay=opt.weight_decay)
    total = opt.epochs * opt.steps_per_epoch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=opt.lr, total_steps=total)
    step = _Step(model, optimiser, schedule, make_loss(opt.loss, data.weights, opt.focal_gamma), precision, device,
                 channels_last)
    checkpoint = Checkpoint(run_dir / CHECKPOINT, config_hash, dist, network, optimiser, schedule, precision.scaler)
    hooks: list[Hook] = [KeepBest(network, opt.monitor), EarlyStopping(opt.early_stopping_patience), checkpoint,
                         MetricsLog(run_dir, dist), Barrier(dist)] + ([EachEpoch(on_epoch)] if on_epoch else [])
    state = LoopState()
    if resume:
        checkpoint.restore(state)
    model.train()
    with progress_bar("train", total=max(0, opt.epochs - state.epoch) * opt.steps_per_epoch,
                      enabled=progress and dist.main) as advance:
        while state.epoch < opt.epochs and not state.stop:
            started = time.perf_counter()
            chips = data.train.epoch(opt.steps_per_epoch * opt.batch_size * dist.world, mode=opt.sampler,
                                     balanced=opt.balanced, seed=opt.seed, epoch=state.epoch)[dist.rank :: dist.world]
            dataset = ChipDataset(data.images, data.train, chips, data.norm, opt.augment, opt.seed, state.epoch)
            losses = []
            for images, labels in _loader(dataset, opt.batch_size, device):
                losses.append(step.batch(images, labels))
                advance(1)
            state.epoch += 1
            row: dict[str, float] = {"epoch": state.epoch, "train_loss": float(np.mean(losses)),
                                     "lr": float(schedule.get_last_lr()[0])}
            if data.val is not None:
                row |= validate(network, data, opt, device, step.loss_fn, channels_last, precision)
            row["seconds"] = round(time.perf_counter() - started, 3)
            state.history.append(row)
            for hook in hooks:
                hook.on_epoch_end(state, row)
    for hook in hooks:
        hook.on_end(state)
    return FitResult(state.history, state.best_epoch, state.stop, state.resumed_from, str(device), precision.name)
