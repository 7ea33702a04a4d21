"""Multi-date inputs: each image stacked with the previous pass of the same area (bands of the target, then the
same bands of the previous pass), never training on a stack that holds a held-out date."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from geovigie.training._config import ConfigError


def _parse(value: str, image: str) -> datetime:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"image {image}: acquired = {value!r} is not an ISO 8601 date; multi-date candidates "
                          "order the passes by it") from None


def _when(scene: Any) -> datetime:
    return _parse(scene.acquired, scene.name)


def check_acquired(files: list[Any]) -> None:
    """Refuse, before any work, image files without a readable acquisition date (multi-date candidates need them).

    Raises:
        ConfigError: naming the images.
    """
    missing = [f.files[0] for f in files if not f.acquired]
    if missing:
        raise ConfigError(f"images {missing} have no acquisition date: multi-date candidates (dates = 2) need "
                          "`acquired` on every image (STAC items: their datetime)")
    for entry in files:
        _parse(entry.acquired, entry.files[0])


def previous_passes(scenes: list[Any]) -> dict[str, Any | None]:
    """Scene name -> the latest scene of the same area acquired before it (None for an area's first pass).

    Raises:
        ConfigError: an image without a readable acquisition date (`acquired`), or two passes of an area at the same
            time.
    """
    missing = [s.name for s in scenes if not s.acquired]
    if missing:
        raise ConfigError(f"images {missing} have no acquisition date: multi-date candidates (dates = 2) need "
                          "`acquired` on every image (STAC items: their datetime)")
    out: dict[str, Any | None] = {}
    for scene in scenes:
        earlier = [s for s in scenes if s.area == scene.area and _when(s) < _when(scene)]
        same = [s.name for s in scenes if s.area == scene.area and s is not scene and _when(s) == _when(scene)]
        if same:
            raise ConfigError(f"images {scene.name} and {same[0]} are passes of area {scene.area!r} at the same time")
        out[scene.name] = max(earlier, key=_when) if earlier else None
    return out


def stacked_inputs(scenes: list[Any], train_masks: list[np.ndarray], held_out: set[str],
                   dates: int) -> tuple[dict[str, np.ndarray], list[np.ndarray], dict[str, str | None]]:
    """The inputs of a `dates`-pass model: scene name -> image (channels, H, W) for the scenes it can predict, the
    training masks (emptied for a stack holding a held-out scene, or a scene without a previous pass), and each
    scene's previous pass (None: its area's first pass, not predicted)."""
    if dates == 1:
        return {s.name: s.image for s in scenes}, list(train_masks), dict.fromkeys(s.name for s in scenes)
    previous = previous_passes(scenes)
    images, masks = {}, []
    for scene, mask in zip(scenes, train_masks, strict=True):
        before = previous[scene.name]
        if before is None:
            masks.append(np.zeros_like(mask))
            continue
        images[scene.name] = np.concatenate([scene.image, before.image])
        masks.append(mask if held_out.isdisjoint((scene.name, before.name)) else np.zeros_like(mask))
    return images, masks, {n: (p.name if p is not None else None) for n, p in previous.items()}
