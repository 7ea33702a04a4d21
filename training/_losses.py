"""Segmentation losses with class weights and an ignored label: cross-entropy, cross-entropy + Dice, focal."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F  # noqa: N812

from geovigie.training._targets import IGNORE

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def soft_dice(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, ignore: int = IGNORE) -> torch.Tensor:
    """1 - weighted mean soft Dice over classes with a non-zero weight; ignored pixels do not count."""
    valid = (target != ignore).unsqueeze(1)
    probs = logits.float().softmax(dim=1) * valid
    onehot = F.one_hot(torch.where(valid[:, 0], target, 0), logits.shape[1]).permute(0, 3, 1, 2) * valid
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    total = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + 1.0) / (total + 1.0)
    w = weights.to(dice.device)
    return 1 - (dice * w).sum() / w.sum().clamp_min(1e-12)


def focal(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, gamma: float,
          ignore: int = IGNORE) -> torch.Tensor:
    """Class-weighted focal loss (Lin et al. 2017), mean over labelled pixels."""
    logits = logits.float()
    ce = F.cross_entropy(logits, target, ignore_index=ignore, reduction="none")
    pt = torch.exp(-ce)
    w = weights.to(logits.device)[torch.where(target == ignore, 0, target)]
    valid = target != ignore
    loss = ((1 - pt) ** gamma * ce * w)[valid]
    return loss.sum() / valid.sum().clamp_min(1)


def make_loss(kind: str, weights: torch.Tensor, gamma: float = 2.0) -> Loss:
    """`ce`, `ce+dice` or `focal`, all with class `weights` and the IGNORE label."""
    if kind == "focal":
        return lambda logits, target: focal(logits, target, weights, gamma)

    def ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), target, weight=weights.to(logits.device), ignore_index=IGNORE)

    if kind == "ce":
        return ce
    return lambda logits, target: ce(logits, target) + soft_dice(logits, target, weights)
