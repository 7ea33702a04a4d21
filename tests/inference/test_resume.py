"""A prediction killed with SIGKILL resumes from the chunks its journal holds and ends byte-identical to a clean run.

The killed run is a separate process (its own in-process Dask cluster), slowed to 0.15 s a chunk so that the kill
lands mid-run; it is killed once 4 chunk files exist. The rerun, in this process, must predict only the chunks the
journal lacks, publish outputs byte-identical to an uninterrupted run's, and leave no journal or scratch file.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import rasterio

from geovigie.inference import PredictOptions, open_source, predict
from geovigie.inference._chunks import plan_chunks
from geovigie.inference._journal import PARTIAL_FOLDER
from geovigie.models import NETWORK_BUNDLE
from tests.conftest import REPO, SLOVENIA_SCENE, kill_after_journal_chunks

MOSAIC = 3
"""The scene repeated 3 × 3: 300 × 303 px, 36 tiles of 64 px (overlap 16), one tile a chunk."""
OPTIONS = {"tile_size": 64, "overlap": 16, "batch_size": 2, "device": "cpu", "chunk_tiles": 1}

KILLED_RUN = """
import sys, time
from geovigie.inference import ClusterOptions, PredictOptions, predict
from geovigie.inference import _predict, _worker

def slow(*args, **kwargs):
    time.sleep(0.15)
    return _worker.predict_chunk(*args, **kwargs)

_predict.predict_chunk = slow
options = PredictOptions(**{options}, cluster=ClusterOptions(workers=1, threads_per_worker=1))
predict(sys.argv[1], sys.argv[2], options, progress=False, product_level="L1C", bundle=sys.argv[3])
"""


def _mosaic(target: Path) -> Path:
    with rasterio.open(SLOVENIA_SCENE) as src:
        data, profile, names = src.read(), src.profile, src.descriptions
    tiled = np.tile(data, (1, MOSAIC, MOSAIC))
    profile.update(width=tiled.shape[2], height=tiled.shape[1])
    with rasterio.open(target, "w", **profile) as dst:
        dst.write(tiled)
        dst.descriptions = names
    return target


def _kill_after_chunks(raster: Path, out: Path, chunks: int) -> int:
    """Start the slowed run in a process of its own; SIGKILL it once `chunks` chunk files exist. The files then."""
    script = textwrap.dedent(KILLED_RUN).replace("{options}", repr(OPTIONS))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return kill_after_journal_chunks([sys.executable, "-c", script, str(raster), str(out), str(NETWORK_BUNDLE)], out,
                                     chunks, env)


@pytest.mark.slow
def test_killed_run_resumes_from_its_journal(dask_client, tmp_path: Path) -> None:
    raster = _mosaic(tmp_path / "mosaic.tif")
    options = PredictOptions(**OPTIONS)
    total = len(plan_chunks(300, 303, 64, 16, 1))
    assert total == 36

    clean = predict(raster, tmp_path / "clean", options, client=dask_client, progress=False, product_level="L1C",
                    bundle=NETWORK_BUNDLE)  # bit-identical resume is checked on the U-Net
    assert clean.resumed_chunks == 0

    out = tmp_path / "killed"
    left = _kill_after_chunks(raster, out, chunks=4)
    assert 4 <= left < total
    assert not [p for p in out.glob("*.tif") if not p.name.startswith(".")]  # nothing published by the killed run

    resumed = predict(raster, out, options, client=dask_client, progress=False, product_level="L1C",
                      bundle=NETWORK_BUNDLE)
    assert resumed.resumed_chunks == left  # the journal's chunks were read back, not predicted again
    assert resumed.tiles == clean.tiles == 36
    for ours, theirs in ((resumed.classes_path, clean.classes_path),
                         (resumed.probabilities_path, clean.probabilities_path)):
        assert ours.read_bytes() == theirs.read_bytes()
    assert sorted(p.name for p in out.iterdir()) == sorted([resumed.classes_path.name,
                                                            resumed.probabilities_path.name])


def test_journal_of_another_tiling_is_dropped(dask_client, tmp_path: Path) -> None:
    """A journal left by a run with other settings can never be used: the next run removes it."""
    stem = f"{open_source(SLOVENIA_SCENE).key}__landcover-s2l1c-slovenia-v4"  # reference_scene_2-<content hash>
    stale = tmp_path / PARTIAL_FOLDER / f"{stem}.0123456789abcdef"
    stale.mkdir(parents=True)
    (stale / "chunk-00000.npz").write_bytes(b"not ours")
    options = PredictOptions(**OPTIONS)
    result = predict(SLOVENIA_SCENE, tmp_path, options, client=dask_client, progress=False, product_level="L1C")
    assert result.resumed_chunks == 0
    assert not (tmp_path / PARTIAL_FOLDER).exists()


def test_a_damaged_journal_file_is_named_and_deleting_the_journal_recovers(dask_client, tmp_path: Path,
                                                                          monkeypatch) -> None:
    from geovigie import cog
    from geovigie.errors import InvalidInputError

    def no_cog(*args, **kwargs) -> None:
        raise OSError("disk full (simulated)")

    options = PredictOptions(**OPTIONS)
    monkeypatch.setattr(cog, "_to_cog", no_cog)
    with pytest.raises(OSError, match="simulated"):  # every chunk is in the journal, no COG published
        predict(SLOVENIA_SCENE, tmp_path, options, client=dask_client, progress=False, product_level="L1C")
    monkeypatch.undo()
    chunks = sorted(tmp_path.glob(f"{PARTIAL_FOLDER}/*/chunk-*.npz"))
    assert len(chunks) == 4
    chunks[0].write_bytes(chunks[0].read_bytes()[:100])  # damaged behind our back
    with pytest.raises(InvalidInputError, match=rf"{chunks[0].name}: unreadable journal file.*delete"):
        predict(SLOVENIA_SCENE, tmp_path, options, client=dask_client, progress=False, product_level="L1C")
    shutil.rmtree(chunks[0].parent)  # as the message says
    result = predict(SLOVENIA_SCENE, tmp_path, options, client=dask_client, progress=False, product_level="L1C")
    assert result.resumed_chunks == 0 and result.classes_path.exists()


def test_workers_that_cannot_see_the_journal_are_named_before_any_work(dask_client, tmp_path: Path) -> None:
    from geovigie.errors import InvalidInputError
    from geovigie.inference._predict import check_workers_see

    check_workers_see(dask_client, tmp_path)  # the in-process workers share this machine's files
    elsewhere = tmp_path / "on-another-machine"
    worker = next(iter(dask_client.scheduler_info()["workers"]))
    with pytest.raises(InvalidInputError, match=rf"on-another-machine: not visible from worker\(s\) {worker}"):
        check_workers_see(dask_client, elsewhere)
