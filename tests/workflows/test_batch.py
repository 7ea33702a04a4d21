"""`geovigie batch`: new items of a real catalog run through the tasks once; reruns, changes, failures, resumes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import typer
from typer.testing import CliRunner

from geovigie.catalog.imagery import search_imagery
from geovigie.catalog.samples import GERS, MUENSTER, SLOVENIA
from geovigie.catalog.stac import CatalogClient, StaticItemStore
from geovigie.errors import InputNotFoundError, InvalidInputError
from geovigie.workflows import load_batch_config, run_batch, search_items, watch_batch
from tests._support.chunks import CHUNK_REPORTS, counted_predict_chunk
from tests.conftest import GERS_DIR, kill_after_journal_chunks

COMMUNES = GERS_DIR / "COMMUNE_32xxx.geojson"


def _sample_items(catalog_dir: Path, collection: str) -> dict[str, pystac.Item]:
    return {item.id: item for item in CatalogClient.open(catalog_dir).search(collections=[collection]).items()}


@pytest.fixture
def slovenia(catalog_dir: Path) -> dict[str, pystac.Item]:
    return _sample_items(catalog_dir, SLOVENIA)


@pytest.fixture
def inputs(tmp_path: Path, slovenia: dict[str, pystac.Item]) -> StaticItemStore:
    """A catalog the batch watches, holding two of the real Slovenia scenes to begin with."""
    store = StaticItemStore(tmp_path / "inputs")
    for name in ("slovenia-reference-scene-1", "slovenia-reference-scene-2"):
        store.upsert(slovenia[name].clone())
    return store


def _config(tmp_path: Path, source: Path | str, body: str, name: str = "job") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'source = "{source}"\noutput_dir = "out"\n{body}\n', encoding="utf-8")
    return path


LANDCOVER = f'collection = "{SLOVENIA}"\n[[tasks]]\nkind = "landcover"\nproduct_level = "L1C"\n'


def _files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


def _state(report) -> dict:  # noqa: ANN001
    return json.loads(report.state_path.read_text())


def test_new_items_are_published_once_and_a_rerun_does_no_work(inputs, settings, dask_client, tmp_path) -> None:
    config = load_batch_config(_config(tmp_path, inputs.root / "catalog.json", LANDCOVER))
    first = run_batch(config, settings, client=dask_client, progress=False)
    assert first.ok and first.items == 2 and first.up_to_date == 0
    assert sorted(layer.id for _, layer in first.published) == [
        "landcover-slovenia-reference-scene-1", "landcover-slovenia-reference-scene-2"]
    out = tmp_path / "out"
    assert first.state_path == out / "batch" / "job.json"
    for _, layer in first.published:
        assert layer.item_path.is_file() and layer.item_path.is_relative_to(out / "results")
        with rasterio.open(layer.item.assets["data"].get_absolute_href()) as src:
            classes = src.read(1)
        assert classes.shape == (101, 100) and set(np.unique(classes)) <= set(range(5))
    assert set(_state(first)["done"]) == {f"{SLOVENIA}/slovenia-reference-scene-{i}#landcover" for i in (1, 2)}
    before = _files(out)

    again = run_batch(config, settings, client=dask_client, progress=False)
    assert again.ok and again.jobs == [] and again.published == [] and again.up_to_date == 2
    assert _files(out) == before  # nothing rewritten, not even the state


def test_new_changed_items_and_a_changed_task_run_again(inputs, slovenia, settings, dask_client, tmp_path) -> None:
    path = _config(tmp_path, inputs.root / "catalog.json", LANDCOVER)
    run_batch(load_batch_config(path), settings, client=dask_client, progress=False)
    inputs.upsert(slovenia["slovenia-reference-scene-3"].clone())
    changed = slovenia["slovenia-reference-scene-1"].clone()
    changed.properties["updated"] = "2030-01-01T00:00:00Z"  # the provider reprocessed it
    inputs.upsert(changed)

    second = run_batch(load_batch_config(path), settings, client=dask_client, progress=False)
    assert second.ok and second.up_to_date == 1
    assert sorted((job.item.id, job.reason) for job in second.jobs) == [
        ("slovenia-reference-scene-1", "item changed"), ("slovenia-reference-scene-3", "new")]
    assert len(second.published) == 2

    path.write_text(path.read_text().replace('kind = "landcover"', 'kind = "landcover"\ntile_size = 96'))
    planned = run_batch(load_batch_config(path), settings, client=dask_client, dry_run=True)
    assert [job.reason for job in planned.jobs] == ["task changed"] * 3


def test_a_corrupt_item_is_recorded_and_the_others_carry_on(inputs, slovenia, settings, dask_client,
                                                            tmp_path) -> None:
    broken = tmp_path / "broken_scene.tif"
    broken.write_bytes(Path(slovenia["slovenia-reference-scene-2"].assets["data"].href).read_bytes()[:3000])
    item = slovenia["slovenia-reference-scene-3"].clone()
    item.assets["data"].href = str(broken)
    inputs.upsert(item)
    path = _config(tmp_path, inputs.root / "catalog.json", LANDCOVER)

    report = run_batch(load_batch_config(path), settings, client=dask_client, progress=False)
    assert not report.ok and len(report.published) == 2
    [(job, error)] = report.failed
    assert job.item.id == "slovenia-reference-scene-3" and "broken_scene.tif" in error
    recorded = _state(report)["failed"][f"{SLOVENIA}/slovenia-reference-scene-3#landcover"]
    assert recorded["error"] == error
    # the next pass retries it (and only it); the command line exits non-zero while it fails
    app = typer.Typer()
    app.callback()(lambda: None)
    from geovigie._cli_batch import PARTIAL_FAILURE, register
    from geovigie.cli import friendly_errors

    register(app, friendly_errors, lambda: settings)
    result = CliRunner().invoke(app, ["batch", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "slovenia-reference-scene-3" in result.output and "failed before" in result.output
    assert "scene-1" not in result.output
    address = dask_client.scheduler.address
    result = CliRunner().invoke(app, ["batch", str(path), "--no-progress", "--scheduler", address])
    assert result.exit_code == PARTIAL_FAILURE, result.output
    assert "0 done, 1 failed" in result.output and "broken_scene.tif" in result.output


def test_dry_run_lists_the_jobs_and_writes_nothing(inputs, settings, tmp_path) -> None:
    report = run_batch(load_batch_config(_config(tmp_path, inputs.root, LANDCOVER)), settings, dry_run=True)
    assert [(job.item.id, job.reason) for job in report.jobs] == [
        ("slovenia-reference-scene-1", "new"), ("slovenia-reference-scene-2", "new")]
    assert not (tmp_path / "out").exists()


def test_an_interrupted_run_resumes_at_the_next_item(inputs, settings, dask_client, tmp_path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from geovigie.workflows import landcover

    calls = []

    def interrupted_second(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(args[0].id)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C (or SIGTERM in the CLI) during the second item
        return landcover(*args, **kwargs)

    monkeypatch.setattr("geovigie.workflows._batch.landcover", interrupted_second)
    config = load_batch_config(_config(tmp_path, inputs.root, LANDCOVER))
    with pytest.raises(KeyboardInterrupt):
        run_batch(config, settings, client=dask_client, progress=False)
    state = json.loads((tmp_path / "out" / "batch" / "job.json").read_text())
    assert list(state["done"]) == [f"{SLOVENIA}/slovenia-reference-scene-1#landcover"]
    before = {k: v for k, v in _files(tmp_path / "out").items() if "scene-1" in k}
    assert len(before) >= 3  # its prediction COGs, its layer's COGs and item

    monkeypatch.undo()
    resumed = run_batch(config, settings, client=dask_client, progress=False)
    assert [job.item.id for job in resumed.jobs] == ["slovenia-reference-scene-2"] and resumed.ok
    assert {k: v for k, v in _files(tmp_path / "out").items() if "scene-1" in k} == before  # first item untouched


def test_area_query_and_cql2_filter_select_items(catalog_dir, settings, tmp_path) -> None:
    def found(body: str) -> list[str]:
        config = load_batch_config(_config(tmp_path, catalog_dir, body))
        return sorted(i.id for i in search_items(config, settings).items)

    tasks = '\n[[tasks]]\nkind = "landcover"\n'
    everything = found(f'collection = "{SLOVENIA}"\nmax_cloud = 100{tasks}')
    assert len(everything) == 4
    clear = found(f'collection = "{SLOVENIA}"\nmax_cloud = 100\nquery = {{ "geovigie:cloudy" = {{ eq = false }} }}'
                  f'{tasks}')
    assert clear == [i for i in everything if i != "slovenia-reference-scene-0"]
    assert found(f'collection = "{SLOVENIA}"{tasks}') == clear  # the demo's cloud rule, by default
    cloudy = found(f'collection = "{SLOVENIA}"\nmax_cloud = 100\nfilter = {{ op = "and", args = [{{ op = "=", args = '
                   f'[{{ property = "geovigie:cloudy" }}, true] }}, {{ op = "like", args = [{{ property = "id" }}, '
                   f'"slovenia-%"] }}] }}{tasks}')
    assert cloudy == ["slovenia-reference-scene-0"]
    assert found(f'collection = "{SLOVENIA}"\nfilter = "\\"geovigie:cloudy\\" = true"{tasks}') == []  # then skipped
    assert found(f'collection = "{SLOVENIA}"\nquery = {{ id = {{ startsWith = "slovenia-reference-scene_" }} }}'
                 f'{tasks}') == []  # `_` is literal, not a LIKE wildcard
    # the Gers communes (Lambert-93) hold the Gers scene, not Slovenia's
    assert found(f'collection = "{SLOVENIA}"\naoi = "{COMMUNES}"{tasks}') == []
    assert found(f'collection = "{GERS}"\naoi = "{COMMUNES}"{tasks}') == list(_sample_items(catalog_dir, GERS))


def test_the_shipped_readme_job_selects_the_clear_slovenia_scenes(catalog_dir, settings) -> None:
    from tests.conftest import REPO

    config = load_batch_config(REPO / "jobs" / "slovenia.toml")
    assert config.source is not None and config.source.endswith("geovigie-data/catalog")
    assert [t.kind for t in config.tasks] == ["landcover"] and config.tasks[0].bundle is None  # predict's default
    selection = search_items(config.model_copy(update={"source": str(catalog_dir)}), settings)
    assert [i.id for i in selection.items] == [f"slovenia-reference-scene-{i}" for i in (1, 2, 3)]
    assert [item.id for item, _ in selection.cloudy] == ["slovenia-reference-scene-0"]
    assert selection.notes()[0].startswith("skipped slovenia-reference-scene-0: cloudy")
    # `catalog search --max-cloud` and the demo go by the same rule (catalog.cloud_skip_reason)
    searched = search_imagery(str(catalog_dir / "catalog.json"), SLOVENIA, max_cloud=config.max_cloud,
                              settings=settings)
    assert [i.id for i in searched] == [i.id for i in selection.items]
    assert len(search_imagery(str(catalog_dir / "catalog.json"), SLOVENIA, settings=settings)) == 4  # no limit


def test_ndvi_task_on_the_gers_scene(catalog_dir, settings, tmp_path) -> None:
    path = _config(tmp_path, catalog_dir, f'collection = "{GERS}"\naoi = "{COMMUNES}"\n[[tasks]]\nkind = "ndvi"\n')
    report = run_batch(load_batch_config(path), settings, progress=False)
    assert report.ok and [layer.id for _, layer in report.published] == ["ndvi-gers-20181023"]
    with rasterio.open(report.published[0][1].item.assets["data"].get_absolute_href()) as src:
        assert src.crs.to_epsg() == 2154 and 0.2 < float(np.nanmean(src.read(1, masked=True))) < 0.9


@pytest.mark.parametrize(("body", "message"), [
    (f'collection = "{SLOVENIA}"\ncolour = "red"\n[[tasks]]\nkind = "ndvi"', "unknown key 'colour'"),
    (f'collection = "{SLOVENIA}"\n[[tasks]]\nkind = "segment"', "tasks.0: Input tag 'segment'"),
    (f'collection = "{SLOVENIA}"\n[[tasks]]\nkind = "ndvi"\n[[tasks]]\nkind = "ndvi"', "'ndvi' given twice"),
    (f'collection = "{SLOVENIA}"\nbbox = [0, 0, 1, 1]\naoi = "{COMMUNES}"\n[[tasks]]\nkind = "ndvi"',
     "bbox or aoi"),
    (f'collection = "{SLOVENIA}"\nquery = {{ x = {{ about = 1 }} }}\n[[tasks]]\nkind = "ndvi"',
     "unknown operator 'about'"),
    (f'collection = "{SLOVENIA}"\nfilter = {{ op = "s_intersects", args = [] }}\n[[tasks]]\nkind = "ndvi"',
     "is not valid CQL2"),
    (f'collection = "{SLOVENIA}"\nfilter = "cloud >>> 3"\n[[tasks]]\nkind = "ndvi"', "is not valid CQL2"),
    (f'collection = "{SLOVENIA}"\nmax_cloud = 120\n[[tasks]]\nkind = "ndvi"', "max_cloud: Input should be less"),
    (f'collection = "{SLOVENIA}"\nmax_items = 0\n[[tasks]]\nkind = "ndvi"', "max_items: Input should be greater"),
    (f'collection = "{SLOVENIA}"\n[[tasks]]\nkind = "landcover"\ntile_size = 64\noverlap = 64',
     "overlap (64) must be smaller"),
    (f'collection = "{SLOVENIA}"\ntasks = []', "tasks: List should have at least 1 item"),
])
def test_bad_configs_are_refused_with_the_key_named(tmp_path, body: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match="job.toml") as caught:
        load_batch_config(_config(tmp_path, "x", body))
    assert message in str(caught.value)


def test_missing_files_are_named(catalog_dir, settings, tmp_path) -> None:
    with pytest.raises(InputNotFoundError, match="nope.toml"):
        load_batch_config(tmp_path / "nope.toml")
    with pytest.raises(InputNotFoundError, match="aoi file not found"):
        load_batch_config(_config(tmp_path, catalog_dir, f'collection = "{GERS}"\naoi = "gone.geojson"\n'
                                                         '[[tasks]]\nkind = "ndvi"'))
    config = load_batch_config(_config(tmp_path, catalog_dir, f'collection = "{SLOVENIA}"\n[[tasks]]\n'
                                                              'kind = "landcover"\nbundle = "no-such-bundle"'))
    with pytest.raises(InputNotFoundError, match="no-such-bundle.*shipped: .*landcover-s2l1c-slovenia-unet-v1"):
        run_batch(config, settings, dry_run=True)


def test_watch_polls_until_stopped(catalog_dir, settings, tmp_path) -> None:
    config = load_batch_config(_config(tmp_path, catalog_dir, f'collection = "{MUENSTER}"\n[[tasks]]\n'
                                                              'kind = "temperature"'))
    passes = []
    stop = threading.Event()

    def seen(report) -> None:  # noqa: ANN001
        passes.append((len(report.published), report.up_to_date))
        if len(passes) == 2:
            stop.set()

    last = watch_batch(config, settings, interval=0, stop=stop, on_pass=seen, progress=False)
    assert passes == [(2, 0), (0, 2)] and last is not None and last.ok


@pytest.mark.slow
def test_the_watch_command_exits_cleanly_on_sigterm(catalog_dir, tmp_path) -> None:
    path = _config(tmp_path, catalog_dir, f'collection = "{MUENSTER}"\n[[tasks]]\nkind = "temperature"')
    script = ("import typer; from geovigie.cli import friendly_errors, _settings; "
              "from geovigie._cli_batch import register; app = typer.Typer(); app.callback()(lambda: None); "
              "register(app, friendly_errors, _settings); app()")
    process = subprocess.Popen([sys.executable, "-c", script, "batch", str(path), "--watch", "--interval", "120",
                                "--no-progress"], stderr=subprocess.PIPE, text=True, env=dict(os.environ),
                               cwd=tmp_path)
    try:
        lines = []
        assert process.stderr is not None
        for line in process.stderr:  # wait for the first pass's summary, then stop the watcher while it sleeps
            lines.append(line)
            if "up to date; state" in line:
                break
        assert "2 done, 0 failed" in "".join(lines), "".join(lines)
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        rest = process.stderr.read()
        assert process.wait(timeout=30) == 0, "".join(lines) + rest
        assert "stopped" in rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    state = json.loads((tmp_path / "out" / "batch" / "job.json").read_text())
    assert len(state["done"]) == 2 and not state["failed"]


def test_relative_paths_are_taken_from_the_config_folder(catalog_dir, tmp_path) -> None:
    folder = tmp_path / "jobs"
    folder.mkdir()
    shutil.copy(COMMUNES, folder / "zone.geojson")
    path = folder / "gers.toml"
    path.write_text(f'source = "{catalog_dir}"\ncollection = "{GERS}"\naoi = "zone.geojson"\n'
                    '[[tasks]]\nkind = "ndvi"\n')
    config = load_batch_config(path)
    assert config.name == "gers" and config.aoi == folder / "zone.geojson" and config.output_dir is None



KILLED_BATCH = """
import sys, time
from pathlib import Path
from geovigie.inference import _predict, _worker
from geovigie.settings import Settings
from geovigie.workflows import load_batch_config, run_batch

def slow(*args, **kwargs):
    time.sleep(0.2)
    return _worker.predict_chunk(*args, **kwargs)

_predict.predict_chunk = slow
settings = Settings(data_dir=Path(sys.argv[2]), tile_size=32, overlap=8, batch_size=4, device="cpu", chunk_tiles=1,
                    dask_workers=1, dask_threads_per_worker=1)
run_batch(load_batch_config(Path(sys.argv[1])), settings, progress=False)
"""


@pytest.mark.slow
def test_a_killed_batch_resumes_inside_its_interrupted_prediction(inputs, dask_client, tmp_path, monkeypatch) -> None:
    """`kill -9` during the first item's prediction: the next pass predicts only the chunks its journal lacks."""
    from geovigie.inference import _predict
    from geovigie.inference._journal import PARTIAL_FOLDER
    from geovigie.settings import Settings

    path = _config(tmp_path, inputs.root / "catalog.json", LANDCOVER)
    data_dir = tmp_path / "gv"
    command = [sys.executable, "-c", KILLED_BATCH, str(path), str(data_dir)]
    left = kill_after_journal_chunks(command, tmp_path, 3, {**os.environ, "OMP_NUM_THREADS": "1"})
    assert 3 <= left < 16  # 100 × 101 px in tiles of 32 px: 16 one-tile chunks an item

    CHUNK_REPORTS.clear()
    monkeypatch.setattr(_predict, "predict_chunk", counted_predict_chunk)
    settings = Settings(data_dir=data_dir, tile_size=32, overlap=8, batch_size=4, device="cpu", chunk_tiles=1)
    report = run_batch(load_batch_config(path), settings, client=dask_client, progress=False)
    assert report.ok and len(report.published) == 2
    assert len(CHUNK_REPORTS) == 2 * 16 - left  # the journal's chunks were not even submitted
    assert not any(CHUNK_REPORTS)
    assert [f"resumed: {left} chunks" in layer.detail for _, layer in report.published] == [True, False]
    assert not list(tmp_path.rglob(PARTIAL_FOLDER))  # journals gone once the COGs are published
