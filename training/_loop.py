"""A plain training loop: AdamW, class-weighted cross-entropy, AMP on CUDA, progress, seeded."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from geovigie.models import autocast
from geovigie.progress import progress_bar
from geovigie.training._chips import IGNORE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings."""

    steps: int = 600
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    amp: bool = True


def class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """Inverse square-root frequency weights for rare classes, normalised to mean 1 (absent classes: 0)."""
    counts = np.bincount(labels[labels != IGNORE].ravel(), minlength=num_classes).astype(float)
    weights = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1)), 0.0)
    weights *= (counts > 0).sum() / max(weights.sum(), 1e-12)
    return torch.tensor(weights, dtype=torch.float32)


def train(
    network: torch.nn.Module,
    chips: torch.utils.data.Dataset,
    weights: torch.Tensor,
    config: TrainConfig,
    device: torch.device,
    progress: bool = True,
) -> list[float]:
    """Train in place for `config.steps` steps; returns the loss of each step."""
    torch.manual_seed(config.seed)
    network.to(device).train()
    loader = torch.utils.data.DataLoader(chips, batch_size=config.batch_size, shuffle=False, num_workers=0)
    optimiser = torch.optim.AdamW(network.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.lr, total_steps=config.steps)
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights.to(device), ignore_index=IGNORE)
    losses: list[float] = []
    batches = iter(loader)
    with progress_bar("train", total=config.steps, enabled=progress) as advance:
        for _ in range(config.steps):
            try:
                images, labels = next(batches)
            except StopIteration:
                batches = iter(loader)
                images, labels = next(batches)
            images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            with autocast(device, use_amp):
                loss = loss_fn(network(images), labels)
            optimiser.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimiser)
            scaler.update()
            schedule.step()
            losses.append(float(loss.detach()))
            advance(1)
    network.eval()
    return losses
