"""The epoch loop: seeded chips, AMP (bf16 / fp16 by device), DDP, atomic checkpoints, resume, early stopping.

CUDA-only paths (autocast, grad scaling for fp16, channels-last, pinned memory, non-blocking copies, NCCL) are
selected by device; on CPU the same loop runs in float32 and DDP uses gloo.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geovigie.atomic import atomic_path
from geovigie.errors import GeovigieError
from geovigie.models import Normalisation
from geovigie.progress import progress_bar
from geovigie.training._chips import IGNORE
from geovigie.training._config import Optimisation
from geovigie.training._losses import make_loss
from geovigie.training._metrics import confusion_matrix, scores
from geovigie.training._samplers import ChipDataset, ChipSampler

log = logging.getLogger(__name__)
CHECKPOINT = "checkpoint.pt"
METRICS_CSV = "metrics.csv"


class CheckpointError(GeovigieError, ValueError):
    """A checkpoint cannot be resumed from: corrupt, truncated, or written by another config."""


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun job (world 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process writes files (rank 0)."""
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Distributed:
        """Read RANK, WORLD_SIZE, LOCAL_RANK as set by torchrun."""
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                   int(os.environ.get("LOCAL_RANK", 0)))


def setup_distributed(device: torch.device) -> Distributed:
    """Join the torchrun process group when WORLD_SIZE > 1: NCCL on CUDA, gloo on CPU."""
    dist = Distributed.from_env()
    if dist.world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(dist.local_rank)
        torch.distributed.init_process_group(backend=backend)
    return dist


def amp_dtype(device: torch.device, enabled: bool, bf16_supported: bool | None = None) -> torch.dtype | None:
    """Autocast dtype: bfloat16 on CUDA devices that support it, else float16; None (float32) off CUDA."""
    if not enabled or device.type != "cuda":
        return None
    if bf16_supported is None:
        bf16_supported = torch.cuda.is_bf16_supported()
    return torch.bfloat16 if bf16_supported else torch.float16


def class_weights_for(counts: np.ndarray, spec: str | list[float]) -> torch.Tensor:
    """`auto`: inverse square-root frequency, mean 1 over present classes (absent: 0); `none`: 1; or the list."""
    if isinstance(spec, list):
        return torch.tensor(spec, dtype=torch.float32)
    present = counts > 0
    if spec == "none":
        return torch.tensor(present.astype(np.float32))
    weights = np.where(present, 1.0 / np.sqrt(np.maximum(counts, 1)), 0.0)
    weights *= present.sum() / max(weights.sum(), 1e-12)
    return torch.tensor(weights, dtype=torch.float32)


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


def fingerprint(config: dict[str, Any]) -> str:
    """SHA-256 of the optimisation-relevant config: a checkpoint resumes only the run that wrote it."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


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


def write_metrics_csv(path: Path, history: list[dict[str, float]]) -> None:
    """Rewrite `metrics.csv` (one row per epoch) atomically."""
    if not history:
        return
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)


def _tensorboard(run_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def _loader(dataset: torch.utils.data.Dataset, batch: int, device: torch.device) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=False, num_workers=0,
                                       pin_memory=device.type == "cuda")


def _to(device: torch.device, images: torch.Tensor, labels: torch.Tensor,
        channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    images = images.to(device, non_blocking=device.type == "cuda")
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images, labels.to(device, non_blocking=device.type == "cuda")


def validate(network: torch.nn.Module, data: TrainData, opt: Optimisation, device: torch.device,
             loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], channels_last: bool,
             dtype: torch.dtype | None) -> dict[str, float]:
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
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
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
    dtype = amp_dtype(device, opt.amp)
    channels_last = opt.channels_last and device.type == "cuda"
    network.to(device)
    if channels_last:
        network.to(memory_format=torch.channels_last)
    model: torch.nn.Module = network
    if dist.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            network, device_ids=[dist.local_rank] if device.type == "cuda" else None)
    optimiser = torch.optim.AdamW(network.parameters(), lr=opt.lr, weight_decay=opt.weight_decay)
    total_steps = opt.epochs * opt.steps_per_epoch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=opt.lr, total_steps=total_steps)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    loss_fn = make_loss(opt.loss, data.weights, opt.focal_gamma)
    result = FitResult(device=str(device), amp=str(dtype).replace("torch.", "") if dtype else "off")
    best_value, best_state, bad_epochs, start = float("inf"), None, 0, 0
    checkpoint = run_dir / CHECKPOINT
    if resume:
        state = load_checkpoint(checkpoint, config_hash)
        network.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        result.history, start = list(state["history"]), int(state["epoch"])
        best_value, best_state, bad_epochs = float(state["best_value"]), state["best_model"], int(state["bad_epochs"])
        result.best_epoch, result.resumed_from = int(state["best_epoch"]), start
        if state.get("stopped_early"):
            start = opt.epochs
            result.stopped_early = True
    writer = _tensorboard(run_dir) if dist.main else None
    model.train()
    with progress_bar("train", total=(opt.epochs - start) * opt.steps_per_epoch,
                      enabled=progress and dist.main) as advance:
        for epoch in range(start, opt.epochs):
            started = time.perf_counter()
            chips = data.train.epoch(opt.steps_per_epoch * opt.batch_size * dist.world, mode=opt.sampler,
                                     balanced=opt.balanced, seed=opt.seed, epoch=epoch)[dist.rank :: dist.world]
            dataset = ChipDataset(data.images, data.train, chips, data.norm, opt.augment, opt.seed, epoch)
            losses = []
            for images, labels in _loader(dataset, opt.batch_size, device):
                images, labels = _to(device, images, labels, channels_last)
                with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                    loss = loss_fn(model(images), labels)
                optimiser.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimiser)
                scaler.update()
                schedule.step()
                losses.append(float(loss.detach()))
                advance(1)
            row: dict[str, float] = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)),
                                     "lr": float(schedule.get_last_lr()[0])}
            if data.val is not None:
                row |= validate(network, data, opt, device, loss_fn, channels_last, dtype)
            row["seconds"] = round(time.perf_counter() - started, 3)
            result.history.append(row)
            value = row.get(opt.monitor, row["train_loss"])
            value = -value if opt.monitor in ("val_miou", "val_accuracy") and opt.monitor in row else value
            if value < best_value:
                best_value, bad_epochs, result.best_epoch = value, 0, epoch + 1
                best_state = {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}
            else:
                bad_epochs += 1
            stop = bool(opt.early_stopping_patience) and bad_epochs >= opt.early_stopping_patience
            if dist.main:
                _save_checkpoint(checkpoint, {
                    "epoch": epoch + 1, "model": network.state_dict(), "optimiser": optimiser.state_dict(),
                    "schedule": schedule.state_dict(), "scaler": scaler.state_dict(),
                    "torch_rng": torch.get_rng_state(), "history": result.history, "best_value": best_value,
                    "best_model": best_state, "best_epoch": result.best_epoch, "bad_epochs": bad_epochs,
                    "stopped_early": stop, "config_hash": config_hash})
                write_metrics_csv(run_dir / METRICS_CSV, result.history)
                if writer is not None:
                    for key, val in row.items():
                        if key != "epoch":
                            writer.add_scalar(key, val, epoch + 1)
            if dist.world > 1:
                torch.distributed.barrier()
            if on_epoch is not None:
                on_epoch(epoch + 1)
            if stop:
                result.stopped_early = True
                log.info("early stopping after epoch %d (best epoch %d)", epoch + 1, result.best_epoch)
                break
    if writer is not None:
        writer.close()
    if best_state is not None:
        network.load_state_dict(copy.deepcopy(best_state))
    network.eval()
    return result
