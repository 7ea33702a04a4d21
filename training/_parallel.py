"""Where and how the loop runs: the torchrun process group (NCCL on CUDA, gloo on CPU) and mixed precision.

CUDA-only paths (fp16 grad scaling, channels-last, pinned memory, non-blocking copies, NCCL) are selected by
device; bfloat16 autocast also runs on CPU when asked for (`train.amp = "bf16"`), so the AMP path is exercised
without a GPU.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch


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

    def barrier(self) -> None:
        """Wait for every rank (nothing to wait for alone)."""
        if self.world > 1:
            torch.distributed.barrier()


def setup_distributed(device: torch.device) -> Distributed:
    """Join the torchrun process group when WORLD_SIZE > 1: NCCL on CUDA, gloo on CPU."""
    dist = Distributed.from_env()
    if dist.world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(dist.local_rank)
        torch.distributed.init_process_group(backend=backend)
    return dist


def amp_dtype(device: torch.device, enabled: bool | str, bf16_supported: bool | None = None) -> torch.dtype | None:
    """Autocast dtype. `True`: bfloat16 on CUDA devices that support it, else float16, and None (float32) off
    CUDA; `"bf16"` / `"fp16"`: that dtype on any device (CPU included); `False`: None."""
    if enabled in ("bf16", "fp16"):
        return torch.bfloat16 if enabled == "bf16" else torch.float16
    if not enabled or device.type != "cuda":
        return None
    if bf16_supported is None:
        bf16_supported = torch.cuda.is_bf16_supported()
    return torch.bfloat16 if bf16_supported else torch.float16


@dataclass
class Precision:
    """Autocast dtype (None: float32) and the gradient scaler float16 needs."""

    dtype: torch.dtype | None
    scaler: torch.amp.GradScaler
    device_type: str

    @classmethod
    def for_device(cls, device: torch.device, amp: bool | str) -> Precision:
        """The precision `amp` asks for on `device` (see `amp_dtype`)."""
        dtype = amp_dtype(device, amp)
        return cls(dtype, torch.amp.GradScaler(device.type, enabled=dtype == torch.float16), device.type)

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """Autocast to `dtype`, or a no-op in float32."""
        return torch.autocast(self.device_type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None)

    @property
    def name(self) -> str:
        """`bfloat16`, `float16` or `off`, for the card."""
        return str(self.dtype).replace("torch.", "") if self.dtype else "off"


def place(network: torch.nn.Module, device: torch.device, channels_last: bool,
          dist: Distributed) -> torch.nn.Module:
    """Move `network` to `device` (channels-last when asked) and wrap it in DDP under torchrun; returns the module
    to call in training (`network` itself keeps the weights)."""
    network.to(device)
    if channels_last:
        network.to(memory_format=torch.channels_last)
    if dist.world == 1:
        return network
    return torch.nn.parallel.DistributedDataParallel(
        network, device_ids=[dist.local_rank] if device.type == "cuda" else None)
