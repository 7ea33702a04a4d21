"""A small two-date pixel-classifier bundle trained on the shipped Slovenia scenes (acquisition dates from
data/s2-l1c-slovenia/acquisitions.json), for the multi-date tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from geovigie.models import ModelBundle
from geovigie.training import parse_config, run_experiment
from tests.training.conftest import SLOVENIA_DIR, tiny_config

ACQUIRED = {k: v["datetime"] for k, v in json.loads((SLOVENIA_DIR / "acquisitions.json").read_text()).items()
            if k.startswith("reference_scene_")}
"""Scene file stem -> acquisition time: scene 1 (07-31) < 0 (08-20) < 3 (08-30) < 2 (09-09)."""
FOREST = {"kind": "random-forest", "trees": 6, "max_depth": 6, "indices": ["ndvi"], "scene": "median-mad"}


def dated_config(scenes: tuple[int, ...] = (1, 2, 3), **sections: Any) -> dict[str, Any]:
    """`tiny_config` with each image's acquisition time."""
    files = [{"path": str(SLOVENIA_DIR / f"reference_scene_{i}.tif"), "date": f"scene-{i}", "area": "patch",
              "acquired": ACQUIRED[f"reference_scene_{i}"]} for i in scenes]
    config = tiny_config(**sections)
    config["images"]["files"] = files
    return config


def two_date_bundle(folder: Path) -> ModelBundle:
    """A two-date forest (scene 2 held out: trained on the stack scene 3 + its previous pass, scene 1)."""
    config = parse_config(dated_config(split={"mode": "leave-one-date-out", "holdout": "scene-2"},
                                       candidates=[{"name": "forest_2dates", "dates": 2, **FOREST}]), ".")
    result = run_experiment(config, folder / "run", device="cpu", progress=False, bundle_dir=folder / "bundle")
    assert result is not None
    return result.bundle
