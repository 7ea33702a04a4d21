"""The loop: losses, AMP selection, resume bit for bit, corrupt checkpoints, early stopping, DDP with gloo."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from geovigie.models import Architecture, build_network, load_bundle
from geovigie.training import (
    CheckpointError,
    amp_dtype,
    class_weights_for,
    load_scenes,
    normalisation_of,
    parse_config,
    spatial_split,
)
from geovigie.training._hooks import CHECKPOINT, METRICS_CSV, EarlyStopping, KeepBest, LoopState
from geovigie.training._losses import focal, make_loss, soft_dice
from geovigie.training._samplers import ChipSampler
from geovigie.training._trainer import TrainData, fit
from tests.conftest import REPO
from tests.training.conftest import tiny_config, write_toml


def test_amp_dtype_is_chosen_by_device() -> None:
    cuda = torch.device("cuda")
    assert amp_dtype(torch.device("cpu"), True) is None
    assert amp_dtype(cuda, True, bf16_supported=True) is torch.bfloat16
    assert amp_dtype(cuda, True, bf16_supported=False) is torch.float16
    assert amp_dtype(cuda, False, bf16_supported=True) is None
    assert amp_dtype(torch.device("cpu"), "bf16") is torch.bfloat16  # asked for: any device
    assert amp_dtype(torch.device("cpu"), "fp16") is torch.float16


def test_hooks_keep_the_best_epoch_and_stop_after_patience() -> None:
    network = torch.nn.Linear(2, 2)
    state = LoopState()
    hooks = [KeepBest(network, "val_miou"), EarlyStopping(2)]
    for miou in (0.3, 0.5, 0.4, 0.45, 0.9):
        if state.stop:
            break
        with torch.no_grad():
            network.weight.fill_(miou)  # weights that tell the epochs apart
        state.epoch += 1
        row = {"epoch": state.epoch, "train_loss": 1.0, "val_miou": miou}
        state.history.append(row)
        for hook in hooks:
            hook.on_epoch_end(state, row)
    assert state.stop and state.epoch == 4 and state.best_epoch == 2  # 0.9 never seen: stopped after 2 worse
    for hook in hooks:
        hook.on_end(state)
    assert torch.all(network.weight == 0.5) and not network.training


def test_bf16_autocast_trains_on_cpu(tmp_path: Path) -> None:
    data, experiment = _data(tiny_config(train={"epochs": 1, "steps_per_epoch": 2, "batch_size": 2,
                                                "chip_size": 32, "val_chips": 1, "amp": "bf16"}))
    network = _network()
    before = [p.detach().clone() for p in network.parameters()]
    result = fit(network, data, experiment.train, torch.device("cpu"), tmp_path, config_hash="h", progress=False)
    assert result.amp == "bfloat16" and result.device == "cpu"
    row = result.history[0]
    assert np.isfinite(row["train_loss"]) and np.isfinite(row["val_loss"])
    assert all(p.dtype == torch.float32 for p in network.parameters())  # autocast, not a bf16 model
    assert any(not torch.equal(a, b) for a, b in zip(before, network.parameters(), strict=True))


def test_losses_weight_classes_and_skip_ignored_pixels() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8)
    target = torch.randint(0, 3, (2, 8, 8))
    target[:, :2] = 255
    ones = torch.ones(3)
    ce = torch.nn.functional.cross_entropy(logits, target, ignore_index=255)
    assert torch.isclose(focal(logits, target, ones, gamma=0.0), ce, atol=1e-6)
    assert focal(logits, target, ones, gamma=2.0) < ce
    perfect = torch.nn.functional.one_hot(torch.where(target == 255, 0, target), 3).permute(0, 3, 1, 2) * 20.0
    assert soft_dice(perfect, target, ones) < 0.01 < soft_dice(logits, target, ones)
    changed = logits.clone()
    changed[:, :, :2] = 100.0  # ignored pixels do not count
    for kind in ("ce", "ce+dice", "focal"):
        loss = make_loss(kind, ones)
        assert torch.isclose(loss(logits, target), loss(changed, target), atol=1e-5)
    weights = class_weights_for(np.array([900, 100, 0]), "auto")
    assert weights[1] > weights[0] > 0 and weights[2] == 0


def _data(config: dict) -> tuple[TrainData, object]:
    experiment = parse_config(config, ".")
    scenes, bands = load_scenes(experiment)
    split = spatial_split(scenes, block_px=20, buffer_px=2, val_fraction=0.2, test_fraction=0.2, seed=7)
    train = [split[s.name].train for s in scenes]
    labels = [s.labels for s in scenes]
    norm = normalisation_of([s.image for s in scenes], train, "global")
    data = TrainData([s.image for s in scenes], ChipSampler(labels, train, 32, 5),
                     ChipSampler(labels, [split[s.name].val for s in scenes], 32, 5), norm,
                     class_weights_for(np.array([1, 1, 1, 1, 1]), "auto"), experiment.class_names)
    return data, experiment


def _network(bands: int = 13) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_network(Architecture(decoder_channels=[16, 16, 16, 16, 16]), bands, 5)


def test_resume_continues_bit_for_bit(tmp_path: Path) -> None:
    data, experiment = _data(tiny_config(train={"epochs": 3, "steps_per_epoch": 1, "batch_size": 2,
                                                "chip_size": 32, "val_chips": 1}))
    opt = experiment.train
    straight = _network()
    fit(straight, data, opt, torch.device("cpu"), tmp_path / "a", config_hash="h", progress=False)

    class InterruptError(Exception):
        pass

    def stop_after_two(epoch: int) -> None:
        if epoch == 2:
            raise InterruptError

    (tmp_path / "a").mkdir(exist_ok=True)
    (tmp_path / "b").mkdir()
    with pytest.raises(InterruptError):
        fit(_network(), data, opt, torch.device("cpu"), tmp_path / "b", config_hash="h", progress=False,
            on_epoch=stop_after_two)
    resumed = _network()
    result = fit(resumed, data, opt, torch.device("cpu"), tmp_path / "b", config_hash="h", progress=False,
                 resume=True)
    assert result.resumed_from == 2 and len(result.history) == 3
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    lines = (tmp_path / "b" / METRICS_CSV).read_text().splitlines()
    assert lines[0].startswith("epoch,train_loss,lr,val_loss,val_miou") and len(lines) == 4
    with pytest.raises(CheckpointError, match="another experiment config"):
        fit(_network(), data, opt, torch.device("cpu"), tmp_path / "b", config_hash="other", progress=False,
            resume=True)
    checkpoint = tmp_path / "b" / CHECKPOINT
    checkpoint.write_bytes(checkpoint.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="corrupt checkpoint.*delete it"):
        fit(_network(), data, opt, torch.device("cpu"), tmp_path / "b", config_hash="h", progress=False,
            resume=True)


def test_early_stopping_keeps_the_best_epoch(tmp_path: Path) -> None:
    data, experiment = _data(tiny_config(train={"epochs": 6, "steps_per_epoch": 1, "batch_size": 2, "chip_size": 32,
                                                "val_chips": 1, "lr": 0.5, "early_stopping_patience": 1}))
    result = fit(_network(), data, experiment.train, torch.device("cpu"), tmp_path, config_hash="h", progress=False)
    losses = [row["val_loss"] for row in result.history]
    assert result.stopped_early and len(result.history) < 6
    assert result.best_epoch == 1 + int(np.argmin(losses))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_with_two_gloo_processes_writes_a_bundle(tmp_path: Path) -> None:
    config = write_toml(tmp_path / "tiny.toml", tiny_config(train={"epochs": 1, "steps_per_epoch": 2, "batch_size": 2,
                                                                   "chip_size": 32, "val_chips": 2,
                                                                   "random_forest_trees": 5}))
    script = tmp_path / "entry.py"
    script.write_text("import sys\nfrom geovigie.training import run_experiment\n"
                      "run_experiment(sys.argv[1], sys.argv[2], device='cpu', progress=False)\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
               "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), str(script), str(config),
               str(tmp_path / "run")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    card = load_bundle(tmp_path / "run" / "bundle").card
    assert card.provenance["training"]["world_size"] == 2
    assert (tmp_path / "run" / METRICS_CSV).is_file()
