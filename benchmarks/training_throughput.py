"""Training throughput (chips per second) of the land-cover experiment config, on CPU and, when present, CUDA.

Loads the config's data and split as `geovigie train` does, then times `--steps` optimisation steps of the real loop
(augmentation, loss, AdamW, OneCycle; no validation, no checkpoint), after `--warmup` steps. AMP off on CPU (float32);
on CUDA both AMP off and AMP on (bf16 or fp16 as `amp_dtype` picks), channels-last and pinned memory.

    python benchmarks/training_throughput.py [--config training/configs/landcover-s2l1c-slovenia.toml]
        [--steps 20] [--warmup 3] [--batch 16] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from geovigie.models import Architecture, build_network
from geovigie.training import amp_dtype, class_weights_for, load_config, load_scenes, normalisation_of, spatial_split
from geovigie.training._samplers import ChipSampler
from geovigie.training._trainer import TrainData, fit

REPO = Path(__file__).resolve().parent.parent


def measure(config_path: Path, device: torch.device, amp: bool, steps: int, warmup: int, batch: int) -> dict:
    """Chips per second over `steps` steps (after `warmup` untimed steps) of the config's loop on `device`."""
    config = load_config(config_path)
    scenes, bands = load_scenes(config)
    sp = config.split
    split = spatial_split(scenes, block_px=sp.block_px, buffer_px=sp.buffer_px, val_fraction=sp.val_fraction,
                          test_fraction=sp.test_fraction, seed=sp.seed)
    masks = [split[s.name].train for s in scenes]
    opt = config.train.model_copy(update={"epochs": 1, "steps_per_epoch": steps, "batch_size": batch, "amp": amp,
                                          "early_stopping_patience": 0})
    n = len(config.class_names)
    data = TrainData([s.image for s in scenes], ChipSampler([s.labels for s in scenes], masks, opt.chip_size, n),
                     None, normalisation_of([s.image for s in scenes], masks, "global"),
                     class_weights_for(np.ones(n), "auto"), config.class_names)
    network = build_network(Architecture(**config.model.model_dump()), len(bands), n)
    with tempfile.TemporaryDirectory() as tmp:
        warm = opt.model_copy(update={"steps_per_epoch": warmup})
        fit(network, data, warm, device, Path(tmp) / "warm", config_hash="bench", progress=False)
        (Path(tmp) / "run").mkdir()
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        fit(network, data, opt, device, Path(tmp) / "run", config_hash="bench", progress=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
    dtype = amp_dtype(device, amp)
    return {"device": str(device), "amp": str(dtype).replace("torch.", "") if dtype else "off", "steps": steps,
            "batch": batch, "chip": opt.chip_size, "bands": len(bands), "seconds": round(seconds, 2),
            "chips_per_s": round(steps * batch / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "training/configs/landcover-s2l1c-slovenia.toml")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [measure(args.config, torch.device("cpu"), False, args.steps, args.warmup, args.batch)]
    if torch.cuda.is_available():
        for amp in (False, True):
            rows.append(measure(args.config, torch.device("cuda"), amp, args.steps * 5, args.warmup, args.batch))
    print(json.dumps({"config": str(args.config.relative_to(REPO) if args.config.is_relative_to(REPO) else args.config),
                      "torch": torch.__version__, "cpu_threads": args.threads, "machine": platform.machine(),
                      "results": rows}, indent=1))


if __name__ == "__main__":
    main()
