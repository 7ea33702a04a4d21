"""One-off (issue 21): rewrite the input paths a shipped card records relative to the repository root.

Cards trained before `geovigie train` recorded repository-relative paths hold the absolute path of the developer's
checkout they were trained in (`/work/.../training/configs/../../data/...`) in `provenance.images[].files`, and the
label path relative to the config's folder. This rewrites both (and `field_label_files`) as `geovigie train` now
records them, then the card's STAC item (`write_card`). Only provenance text changes: `weights_sha256` and the ONNX
hashes cover the model files, which are not touched (checked by loading the bundle and its weights after).

    python tools/relative_card_paths.py models/bundles/NAME [...]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from geovigie.models import check_weights, load_bundle, write_card

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "training" / "configs"
CHECKOUT = re.compile(r"^/.*?/training/configs/")
"""The config folder of whichever checkout trained the bundle: what follows it is relative to training/configs."""


def relative(path: str) -> str:
    """A recorded path as the repository-relative POSIX path it points to (unchanged when outside the repo)."""
    tail = CHECKOUT.sub("", path)
    resolved = (CONFIGS / tail).resolve() if not Path(tail).is_absolute() else Path(tail).resolve()
    return resolved.relative_to(REPO).as_posix() if resolved.is_relative_to(REPO) else path


def main(folders: list[str]) -> None:
    for folder in folders:
        bundle = load_bundle(folder)
        provenance = dict(bundle.card.provenance)
        provenance["images"] = [{**image, "files": [relative(f) for f in image.get("files", [])]}
                                for image in provenance.get("images", [])]
        labels = dict(provenance.get("labels", {}))
        if labels.get("path"):
            labels["path"] = relative(labels["path"])
        if labels.get("field_label_files"):
            labels["field_label_files"] = [relative(f) for f in labels["field_label_files"]]
        provenance["labels"] = labels
        write_card(folder, bundle.card.model_copy(update={"provenance": provenance}))
        check_weights(load_bundle(folder))
        print(f"{folder}: {[f for i in provenance['images'] for f in i['files']]}, labels {labels.get('path')}")


if __name__ == "__main__":
    main(sys.argv[1:])
