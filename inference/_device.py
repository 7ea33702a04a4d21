"""Compute device selection and mixed precision, identical on CPU and CUDA."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from geovigie.errors import DeviceUnavailableError
from geovigie.types import DeviceName


def resolve_device(name: DeviceName | str) -> torch.device:
    """`auto` -> cuda when available else cpu; `cuda` without a GPU is an error, not a silent fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if str(name).startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(f"device {name!r} requested but CUDA is not available; use device=cpu or auto")
        return torch.device(str(name))
    raise DeviceUnavailableError(f"unknown device {name!r}: use auto, cpu or cuda")


@contextlib.contextmanager
def inference_context(device: torch.device, amp: bool) -> Iterator[None]:
    """No-grad inference, with float16 autocast on CUDA when `amp` is set (a no-op on CPU)."""
    use_amp = amp and device.type == "cuda"
    with torch.inference_mode(), torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
        yield
