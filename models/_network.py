"""Build segmentation networks from names, with segmentation-models-pytorch."""

from __future__ import annotations

import torch

from geovigie.models._card import Architecture


def build_network(arch: Architecture, in_channels: int, num_classes: int) -> torch.nn.Module:
    """Create an untrained smp network (no pretrained weights: nothing is downloaded)."""
    import segmentation_models_pytorch as smp

    return smp.create_model(
        arch.name,
        encoder_name=arch.encoder,
        encoder_weights=None,
        encoder_depth=arch.encoder_depth,
        decoder_channels=tuple(arch.decoder_channels[: arch.encoder_depth]),
        in_channels=in_channels,
        classes=num_classes,
        **arch.extra,
    )
