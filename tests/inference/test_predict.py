"""Tiled inference on a real Sentinel-2 L1C scene with the shipped bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rio_cogeo.cogeo import cog_validate

from geovigie.errors import BandMismatchError, InputNotFoundError, InvalidRasterError
from geovigie.inference import PredictOptions, predict
from geovigie.models import NETWORK_BUNDLE, forward, load_bundle, normalise, normalise_scene
from tests.conftest import LOOPBACK_DASK, SLOVENIA_SCENE


def _opts(settings) -> PredictOptions:
    return PredictOptions.from_settings(settings)


def _whole_image_logits(path: Path) -> np.ndarray:
    bundle = load_bundle(NETWORK_BUNDLE)
    with rasterio.open(path) as src:
        image = normalise_scene(src.read().astype(np.float32), bundle.card.scene_normalisation)  # whole-scene stats
    return forward(bundle.load_network(), normalise(bundle.card, image[None]), torch.device("cpu"), amp=False)[0]


def test_tiled_agrees_with_whole_away_from_edges(settings, dask_client, tmp_path: Path) -> None:
    whole = _whole_image_logits(SLOVENIA_SCENE)
    settings = settings.model_copy(update={"tile_size": 64, "overlap": 32})
    result = predict(SLOVENIA_SCENE, tmp_path, _opts(settings), client=dask_client, progress=False, product_level="L1C",
                     bundle=NETWORK_BUNDLE)  # the U-Net: the default of predict is a per-pixel classifier
    assert result.tiles == 9
    with rasterio.open(result.classes_path) as src:
        tiled = src.read(1)
    with rasterio.open(result.probabilities_path) as src:
        proba = src.read().astype(np.float32) / 250
    edge = 16
    interior = np.s_[edge:-edge, edge:-edge]
    agreement = (tiled == whole.argmax(axis=0))[interior].mean()
    calibrated = whole / load_bundle(NETWORK_BUNDLE).card.temperature  # the predictor divides by the card's T
    soft = np.exp(calibrated - calibrated.max(axis=0))
    soft /= soft.sum(axis=0)
    assert agreement >= 0.96, agreement  # measured 0.986 with the shipped U-Net (0.970 with the retired v1)
    assert np.abs(proba - soft)[(slice(None), *interior)].mean() < 0.03


def test_no_seams_along_tile_borders(settings, dask_client, tmp_path: Path) -> None:
    """Blended tiles disagree with the whole-image prediction no more on tile borders than elsewhere."""
    whole = _whole_image_logits(SLOVENIA_SCENE).argmax(axis=0)
    settings = settings.model_copy(update={"tile_size": 64, "overlap": 32})
    result = predict(SLOVENIA_SCENE, tmp_path, _opts(settings), client=dask_client, progress=False, product_level="L1C",
                     bundle=NETWORK_BUNDLE)  # the U-Net: the default of predict is a per-pixel classifier
    with rasterio.open(result.classes_path) as src:
        differs = src.read(1) != whole
    # tile borders of the grid (offsets 0, 32, 36 in both directions, tile 64): columns 32, 36, 64, 68...
    border_cols = [32, 36, 63, 64]
    border_rate = differs[16:-16, border_cols].mean()
    assert border_rate <= max(0.1, 3 * differs[16:-16, 16:-16].mean())


def test_outputs_are_valid_cogs_with_palette(settings, dask_client, tmp_path: Path) -> None:
    result = predict(SLOVENIA_SCENE, tmp_path, _opts(settings), client=dask_client, progress=False, product_level="L1C")
    for path in (result.classes_path, result.probabilities_path):
        valid, errors, _ = cog_validate(str(path))
        assert valid, errors
    card = load_bundle().card
    with rasterio.open(result.classes_path) as src:
        assert src.dtypes[0] == "uint8" and src.nodata == 255
        assert src.crs.to_epsg() == 32633
        assert src.colormap(1)[1] == card.classes[1].rgba
        classes = src.read(1)
    assert set(np.unique(classes)) <= set(range(card.num_classes))
    with rasterio.open(result.probabilities_path) as src:
        assert src.count == 5 and src.descriptions[1] == "forest"
        proba = src.read().astype(int)
    assert np.abs(proba.sum(axis=0) - 250).max() <= 3
    assert (proba.argmax(axis=0) == classes).mean() > 0.99


def test_nodata_pixels_become_255(settings, dask_client, scene_copy: Path, tmp_path: Path) -> None:
    with rasterio.open(scene_copy, "r+") as dst:
        data = dst.read()
        data[:, 10:30, 40:70] = np.nan
        dst.write(data)
    result = predict(scene_copy, tmp_path, _opts(settings), client=dask_client, progress=False, product_level="L1C")
    with rasterio.open(result.classes_path) as src:
        classes = src.read(1)
    with rasterio.open(result.probabilities_path) as src:
        proba = src.read()
    assert (classes[10:30, 40:70] == 255).all()
    assert (proba[:, 10:30, 40:70] == 255).all()
    assert (classes[40:, :] != 255).all()


def test_rerun_is_idempotent(settings, dask_client, tmp_path: Path) -> None:
    first = predict(SLOVENIA_SCENE, tmp_path, _opts(settings), client=dask_client, progress=False, product_level="L1C")
    stamp = first.classes_path.stat().st_mtime_ns
    again = predict(SLOVENIA_SCENE, tmp_path, _opts(settings), client=dask_client, progress=False, product_level="L1C")
    assert again.skipped and not first.skipped
    assert first.classes_path.stat().st_mtime_ns == stamp
    other_tiling = settings.model_copy(update={"overlap": 8})
    assert not predict(SLOVENIA_SCENE, tmp_path, _opts(other_tiling), client=dask_client, progress=False,
                       product_level="L1C").skipped


def test_stac_item_input_picks_bands_by_name(settings, dask_client, catalog_dir: Path, tmp_path: Path) -> None:
    item = catalog_dir / "s2-l1c-slovenia" / "slovenia-reference-scene-2" / "slovenia-reference-scene-2.json"
    from_item = predict(item, tmp_path / "a", _opts(settings), client=dask_client, progress=False)
    from_file = predict(SLOVENIA_SCENE, tmp_path / "b", _opts(settings), client=dask_client, progress=False,
                        product_level="L1C")
    with rasterio.open(from_item.classes_path) as a, rasterio.open(from_file.classes_path) as b:
        assert np.array_equal(a.read(), b.read())


def test_model_loaded_once_per_worker(settings, tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    settings = settings.model_copy(update={"tile_size": 32, "overlap": 8, "batch_size": 2})
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      **LOOPBACK_DASK) as cluster, \
            Client(cluster) as client:
        result = predict(SLOVENIA_SCENE, tmp_path, _opts(settings), client=client, progress=False, product_level="L1C")
        assert result.tiles >= 16

        def loads() -> int:
            from geovigie.inference._worker import cached_networks

            return cached_networks()

        def plugins(dask_worker) -> list[str]:  # noqa: ANN001 - runs on the worker
            return [name for name in dask_worker.plugins if name.startswith("geovigie-predictor-")]

        counts = client.run(loads)
        registered = client.run(plugins)
    # the plugin loaded the network on each worker as it started, once, whether or not it got a chunk
    assert list(counts.values()) == [1, 1]
    assert all(len(names) == 1 for names in registered.values()) and len(registered) == 2


def test_bad_inputs(settings, dask_client, tmp_path: Path) -> None:
    kwargs = {"client": dask_client, "progress": False}
    with pytest.raises(InputNotFoundError, match="missing.tif"):
        predict(tmp_path / "missing.tif", tmp_path / "o", _opts(settings), **kwargs)
    gers_red = next((SLOVENIA_SCENE.parent.parent / "s2-l2a-theia-gers").glob("*_FRE_B4.tif"))
    with pytest.raises(BandMismatchError, match="FRE_B4"):
        predict(gers_red, tmp_path / "o", _opts(settings), **kwargs)
    with pytest.raises(BandMismatchError, match="product level L2A"):
        predict(SLOVENIA_SCENE, tmp_path / "o", _opts(settings), product_level="L2A", **kwargs)
    no_crs = tmp_path / "no_crs.tif"
    with rasterio.open(SLOVENIA_SCENE) as src:
        profile = src.profile
        data = src.read()
    profile.pop("crs")
    profile.update(transform=rasterio.Affine.identity())
    with rasterio.open(no_crs, "w", **profile) as dst:
        dst.write(data)
    with pytest.raises(InvalidRasterError, match="no CRS"):
        predict(no_crs, tmp_path / "o", _opts(settings), **kwargs)
    assert not (tmp_path / "o").exists() or list((tmp_path / "o").iterdir()) == []


def test_existing_scheduler_address_from_settings(settings, tmp_path: Path) -> None:
    from distributed import LocalCluster

    from geovigie.inference import dask_client

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, **LOOPBACK_DASK) as cluster:
        remote = settings.model_copy(update={"dask_scheduler": cluster.scheduler_address})
        with dask_client(remote) as client:
            assert client.scheduler.address == cluster.scheduler_address
            result = predict(SLOVENIA_SCENE, tmp_path, _opts(remote), client=client, progress=False,
                             product_level="L1C")
        assert result.classes_path.exists()
        # without a client argument, predict connects to the scheduler named in settings
        again = predict(SLOVENIA_SCENE, tmp_path / "b", _opts(remote), progress=False, product_level="L1C")
        assert again.classes_path.exists()


def test_force_predicts_with_a_warning_but_never_with_the_wrong_band_count(settings, dask_client,
                                                                           tmp_path: Path) -> None:
    from geovigie.errors import ForcedMismatchWarning

    with pytest.warns(ForcedMismatchWarning, match="L2A"):
        result = predict(SLOVENIA_SCENE, tmp_path, _opts(settings), client=dask_client, progress=False,
                         product_level="L2A", force=True)
    assert result.classes_path.exists()
    gers_red = next((SLOVENIA_SCENE.parent.parent / "s2-l2a-theia-gers").glob("*_FRE_B4.tif"))
    with pytest.warns(ForcedMismatchWarning), pytest.raises(BandMismatchError, match="even forced"):
        predict(gers_red, tmp_path / "x", _opts(settings), client=dask_client, progress=False, force=True,
                band_names=["B04"])


def test_a_failure_between_the_two_cogs_leaves_neither(settings, dask_client, tmp_path: Path, monkeypatch) -> None:
    """The probabilities are published first; when the class map then fails, the probabilities are removed again."""
    from geovigie import cog

    original = cog._to_cog

    def failing_for_classes(scratch: Path, target: Path, *args, **kwargs) -> None:
        if "_classes" in target.name:
            raise OSError("disk full (simulated)")
        original(scratch, target, *args, **kwargs)

    monkeypatch.setattr(cog, "_to_cog", failing_for_classes)
    with pytest.raises(OSError, match="simulated"):
        predict(SLOVENIA_SCENE, tmp_path, _opts(settings), client=dask_client, progress=False, product_level="L1C")
    assert [p.name for p in tmp_path.iterdir()] == [".geovigie-partial"]  # no half pair; the journal for a rerun
    monkeypatch.setattr(cog, "_to_cog", original)
    rerun = predict(SLOVENIA_SCENE, tmp_path, _opts(settings), client=dask_client, progress=False, product_level="L1C")
    assert rerun.resumed_chunks >= 1 and rerun.classes_path.exists() and rerun.probabilities_path.exists()
