"""Tiny experiment configs on the shipped Slovenia scenes, for fast training tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DATA

SLOVENIA_DIR = DATA / "s2-l1c-slovenia"
POLYGONS = DATA / "slovenia-lulc-polygons" / "lulc_polygons.gpkg"
LANDCOVER = [("cultivated land", 1), ("forest", 2), ("grassland", 3), ("shrubland", 4), ("artificial surface", 8)]


def tiny_config(**sections: dict[str, Any]) -> dict[str, Any]:
    """A small land-cover experiment (3 scenes, raster labels, a 16-channel decoder); sections update it."""
    config: dict[str, Any] = {
        "images": {"product_level": "L1C", "input_range": [0.0, 1.5], "files": [
            {"path": str(SLOVENIA_DIR / f"reference_scene_{i}.tif"), "date": f"scene-{i}", "area": "patch"}
            for i in (1, 2, 3)]},
        "labels": {"source": "raster", "path": str(SLOVENIA_DIR / "lulc_mask.tif"), "ignore_values": [0]},
        "classes": [{"name": name, "sources": [value]} for name, value in LANDCOVER],
        "split": {"block_px": 20, "buffer_px": 2, "val_fraction": 0.2, "test_fraction": 0.2, "seed": 7},
        "model": {"encoder": "tu-mobilenetv2_050", "decoder_channels": [16, 16, 16, 16, 16]},
        "train": {"epochs": 2, "steps_per_epoch": 2, "batch_size": 2, "chip_size": 32, "random_forest_trees": 10,
                  "val_chips": 4},
        "output": {"name": "tiny-landcover", "version": "0", "onnx": False},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return copy.deepcopy(config)


@pytest.fixture
def tiny() -> dict[str, Any]:
    return tiny_config()


def write_toml(path: Path, config: dict[str, Any]) -> Path:
    """A config dict as a TOML file (strings, numbers, lists, tables and arrays of tables only)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f'"{k}" = {value(x)}' for k, x in v.items()) + " }"
        return repr(v)

    lines = []
    for section, body in config.items():
        if isinstance(body, dict):
            lines.append(f"[{section}]")
            lines += [f'"{k}" = {value(v)}' for k, v in body.items()]
        elif isinstance(body, list) and body and isinstance(body[0], dict):
            for entry in body:
                lines.append(f"[[{section}]]")
                lines += [f'"{k}" = {value(v)}' for k, v in entry.items()]
        else:
            lines.insert(0, f'"{section}" = {value(body)}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
