"""Predicting a STAC item whose asset lives on an HTTP server (GDAL /vsicurl/ with range requests).

A loopback server with HTTP range support serves a shipped Slovenia scene and items pointing to it; the remote
prediction must equal the local one, reruns must be idempotent, and broken servers give one clear error.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import rasterio.warp

from geovigie.errors import RemoteSourceError
from geovigie.inference import PredictOptions, predict
from tests._support.remote import file_server, remote_item
from tests.conftest import SLOVENIA_SCENE


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, dict[str, bytes], list[str]]]:
    with file_server() as running:
        yield running


def _options() -> PredictOptions:
    return PredictOptions(tile_size=64, overlap=16, batch_size=4, device="cpu")


def _item(base: str, asset: str, item_id: str, **fields: object) -> pystac.Item:
    return pystac.Item.from_dict(remote_item(base, asset, item_id, **fields))


def test_server_honours_ranges(served) -> None:
    """The test double itself: a ranged GET returns exactly those bytes (GDAL relies on it)."""
    import urllib.request

    base, files, _ = served
    request = urllib.request.Request(base + "/scene.tif", headers={"Range": "bytes=10-19"})
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 206 and answer.read() == files["/scene.tif"][10:20]


def test_remote_item_predicts_like_the_local_file(served, dask_client, tmp_path: Path) -> None:
    base, files, requests = served
    item = _item(base, "/scene.tif", "slovenia-remote")
    remote = predict(item, tmp_path / "remote", _options(), client=dask_client, progress=False)
    local = predict(SLOVENIA_SCENE, tmp_path / "local", _options(), client=dask_client, progress=False,
                    product_level="L1C")
    assert any("/scene.tif" in r and "bytes=" in r for r in requests)  # read through range requests
    with rasterio.open(remote.classes_path) as a, rasterio.open(local.classes_path) as b:
        classes = a.read(1)
        assert np.array_equal(classes, b.read(1))
        assert a.crs == b.crs and a.transform == b.transform
    assert (classes != 255).all()
    # an item that declares no checksum or size: its id and href identify it, and a rerun is skipped
    assert predict(item, tmp_path / "remote", _options(), client=dask_client, progress=False).skipped


def test_remote_rerun_is_idempotent_and_follows_declared_identity(served, dask_client, tmp_path: Path) -> None:
    base, files, _ = served
    digest = "1220" + hashlib.sha256(files["/scene.tif"]).hexdigest()  # multihash, as the file extension writes it
    item = _item(base, "/scene.tif", "slovenia-remote-2", **{"file:checksum": digest})
    first = predict(item, tmp_path, _options(), client=dask_client, progress=False)
    stamp = first.classes_path.stat().st_mtime_ns
    again = predict(item, tmp_path, _options(), client=dask_client, progress=False)
    assert again.skipped and not first.skipped and first.classes_path.stat().st_mtime_ns == stamp
    # the same item declaring another checksum (the file was replaced) is predicted again
    changed = _item(base, "/scene.tif", "slovenia-remote-2", **{"file:checksum": "1220" + "0" * 64})
    assert not predict(changed, tmp_path, _options(), client=dask_client, progress=False).skipped


def test_remote_item_json_file_read_over_http(served, dask_client, tmp_path: Path) -> None:
    """The item JSON itself on disk, its asset href on the server: the CLI path (`geovigie predict item.json`)."""
    base, _, _ = served
    path = tmp_path / "item.json"
    path.write_text(json.dumps(remote_item(base, "/scene.tif", "slovenia-remote-3")))
    result = predict(path, tmp_path / "out", _options(), client=dask_client, progress=False)
    assert result.source.bands[0].href == f"/vsicurl/{base}/scene.tif"


@pytest.mark.parametrize(("asset", "words"), [
    ("/missing.tif", "HTTP 404"),
    ("/close.tif", "closed the connection"),
    ("/text.tif", "not a raster"),
])
def test_broken_remote_assets_give_one_clear_error(served, tmp_path: Path, asset: str, words: str) -> None:
    base, _, _ = served
    item = _item(base, asset, "broken")
    with pytest.raises(RemoteSourceError) as caught:
        predict(item, tmp_path / "out", _options(), progress=False)
    message = str(caught.value)
    assert base + asset in message and words in message, message
    assert "\n" not in message
    assert not (tmp_path / "out").exists()
