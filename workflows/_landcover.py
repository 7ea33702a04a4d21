"""Land cover: a model bundle run over an item or a raster, published as a class layer with its probabilities."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pystac

from geovigie.inference import PredictOptions, predict, read_input
from geovigie.models import ModelBundle, load_bundle
from geovigie.paths import printable
from geovigie.progress import Progress
from geovigie.settings import Settings
from geovigie.tiles import LayerSpec, Provenance, publish_layer, results_store_for
from geovigie.types import PROBA_SCALE
from geovigie.workflows._published import PublishedLayer


def landcover(
    source: pystac.Item | str | Path,
    settings: Settings,
    *,
    bundle: ModelBundle | str | Path | None = None,
    client: Any = None,
    out_dir: str | Path | None = None,
    force: bool = False,
    band_names: list[str] | None = None,
    product_level: str | None = None,
    overwrite: bool = False,
    progress: Progress = True,
    previous: pystac.Item | str | Path | None = None,
) -> PublishedLayer:
    """Predict `source` tile by tile with `bundle` and publish the class map (probabilities as an extra asset).

    Args:
        source: a STAC item, a STAC item JSON file or a raster file.
        settings: tiling, device and cluster; results go to `settings.results_dir`.
        bundle: a model bundle or its folder (default: the shipped land-cover bundle).
        client: a Dask client to reuse; a cluster from `settings` is started when None.
        out_dir: where the prediction COGs are kept for idempotent reruns (default DATA_DIR/predictions).
        force: predict even when bands or product level differ from the card (never with a wrong band count).
        band_names: band names of a raster file without band descriptions.
        product_level: the input's processing level when it does not record it.
        overwrite: recompute even when outputs are up to date.
        progress: draw a progress bar, or a hook called with (tiles done, total) as the inference advances.
        previous: the earlier pass of the same place a two-date bundle needs (a STAC item, its JSON or a raster);
            the layer's STAC item lists both inputs.
    """
    started = time.perf_counter()
    bundle = bundle if isinstance(bundle, ModelBundle) else load_bundle(bundle)
    source = read_input(source)  # an item JSON is read once: predict reads its assets, the layer its dates
    before = read_input(previous) if previous is not None else None
    options = PredictOptions.from_settings(settings)
    result = predict(source, Path(out_dir or settings.data_dir / "predictions"), options, bundle=bundle,
                     client=client, force=force, band_names=band_names, product_level=product_level,
                     progress=progress, overwrite=overwrite, previous=before)
    card = bundle.card
    layer_id = f"landcover-{result.source.key}"  # the input's identity: item id, or file stem + content hash
    item = source if isinstance(source, pystac.Item) else None
    common = item.common_metadata if item is not None else None
    spec = LayerSpec(layer_id, f"Land cover {printable(result.source.id)}", "classes", classes=card.classes,
                     description=f"Predicted by {bundle.id}; see its model card for its (small) training data.")
    provenance = Provenance(
        inputs=[_input_ref(source), *([_input_ref(before)] if before is not None else [])],
        lineage=f"tiled inference, tile {options.tile_size} px, overlap {options.overlap} px, "
                "linear-ramp logit blending",
        bundle_id=bundle.id, bundle_card=bundle.path / "card.json",
        datetime=item.datetime if item is not None else None,
        start_datetime=common.start_datetime if common is not None else None,
        end_datetime=common.end_datetime if common is not None else None,
        extra_assets={"probabilities": (result.probabilities_path, f"Class probabilities (value / {PROBA_SCALE})")},
    )
    published = publish_layer(results_store_for(settings), result.classes_path, spec, provenance)
    detail = "up to date" if result.skipped else f"{result.tiles} tiles, {result.seconds:.1f} s"
    if result.resumed_chunks:
        detail += f", resumed: {result.resumed_chunks} chunks finished by an interrupted run were not predicted again"
    return PublishedLayer(layer_id, "land cover", published, detail, time.perf_counter() - started)


def _input_ref(source: pystac.Item | Path) -> str:
    """How the layer's STAC item names one input: an item's self link (else its id), a file's absolute path."""
    if isinstance(source, pystac.Item):
        return source.get_self_href() or source.id
    return str(Path(source).resolve())
