"""Tiled, batched, Dask-parallel prediction of a raster into COG class and probability maps."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pystac
from rasterio.windows import Window

from geovigie.atomic import run_lock
from geovigie.catalog.imagery import cache_dir_of
from geovigie.classes import palette
from geovigie.cog import cog_writer
from geovigie.digests import remember
from geovigie.errors import (
    BandMismatchError,
    EmptyInputError,
    ForcedMismatchWarning,
    GeovigieError,
    InvalidInputError,
    ValueRangeError,
)
from geovigie.inference._chunks import Chunk, Window4, plan_chunks
from geovigie.inference._cluster import ClusterOptions, dask_client
from geovigie.inference._journal import RunJournal, open_journal
from geovigie.inference._scene import scene_maps
from geovigie.inference._source import RasterSource, http_env, open_source, stack_passes
from geovigie.inference._worker import ChunkJob, ChunkReport, PredictorPlugin, finish_seam, predict_chunk
from geovigie.models import (
    RUNTIMES,
    ModelBundle,
    ModelCard,
    check_runtime,
    check_weights,
    load_bundle,
    resolve_device,
    resolve_runtime,
)
from geovigie.paths import safe_join, safe_name
from geovigie.progress import Progress
from geovigie.settings import Settings, check_input_scaling, check_tiling
from geovigie.types import NODATA_CLASS, NODATA_PROBA, PROBA_SCALE

RUN_TAG = "GEOVIGIE_RUN"
INPUTS_TAG = "GEOVIGIE_INPUTS"


def input_label(location: str) -> str:
    """The input as the COG's tag names it: a URL as is; a local file by its name and a digest of its full path,
    which tells two same-named inputs apart without publishing a server path (the COGs are published)."""
    if "://" in location:
        return location
    digest = hashlib.sha256(str(Path(location).resolve()).encode()).hexdigest()[:12]
    return f"{Path(location).name} (path sha256 {digest})"


def inputs_label(source: RasterSource) -> str:
    """Every input of a prediction as the COG's tag names them: the input, or each pass (target first) joined by
    ' + '."""
    return " + ".join(input_label(location) for location in source.passes or (source.location,))


BUNDLE_TAG = "GEOVIGIE_BUNDLE"
FORCED_TAG = "GEOVIGIE_FORCED"
"""Tag of outputs predicted although the input did not match the bundle: the forced warnings, joined by ' | '."""

COG_LEVEL = 1
"""Deflate level of the class and probability COGs: 2.5 times faster than GDAL's default 6 for 7 % more bytes
(BENCHMARKS.md)."""
OUTSIDE_FRACTION = 0.05
"""A band is out of range when more than this share of its sampled valid values lie outside the card's range."""
RANGE_MARGIN = 0.1
"""Values within this share of the range's width beyond its ends still count as inside (noise, offsets)."""


@dataclass(frozen=True)
class PredictOptions:
    """How to tile and where to run: tile size and overlap (px), tiles per forward pass, device, AMP, cluster.

    `chunk_tiles`: each Dask task reads, predicts and blends a chunk of about `chunk_tiles`² tiles.
    `input_scale`, `input_offset`: raw values become `value * input_scale + input_offset` before the card's range
    check and normalisation, e.g. 0.0001 for Sentinel-2 digital numbers (reflectance × 10000) given to a
    reflectance model. `runtime` (auto: onnx when the bundle has an ONNX export and onnxruntime is installed, else
    torch), `channels_last`, `quantise` (int8 dynamic, Linear layers only): how the network runs.
    """

    tile_size: int = 256
    overlap: int = 64
    batch_size: int = 8
    device: str = "auto"
    amp: bool = True
    cluster: ClusterOptions = field(default_factory=ClusterOptions)
    chunk_tiles: int = 8
    input_scale: float = 1.0
    input_offset: float = 0.0
    runtime: str = "auto"
    channels_last: bool = False
    quantise: bool = False
    digest_cache: Path | None = None
    """Folder remembering the content hashes of unchanged inputs and weights (`geovigie.digests`); not part of
    any signature."""

    def __post_init__(self) -> None:
        if self.tile_size < 1 or self.batch_size < 1 or self.overlap < 0 or self.chunk_tiles < 1:
            raise InvalidInputError(f"tile size, batch size, chunk tiles must be positive and overlap non-negative: "
                                    f"{self}")
        try:
            check_tiling(self.tile_size, self.overlap)
            check_input_scaling(self.input_scale, self.input_offset)
        except ValueError as err:
            raise InvalidInputError(str(err)) from None
        if self.runtime not in RUNTIMES:
            raise InvalidInputError(f"runtime {self.runtime!r} unknown: use one of {', '.join(RUNTIMES)}")

    @classmethod
    def from_settings(cls, settings: Settings) -> PredictOptions:
        """The options the settings describe (`input_scale`, `input_offset`, `runtime`, `chunk_tiles`, `channels_last`
        when the settings have them)."""
        defaults = cls()
        extra = {name: getattr(settings, name, getattr(defaults, name))
                 for name in ("chunk_tiles", "input_scale", "input_offset", "runtime", "channels_last")}
        return cls(settings.tile_size, settings.overlap, settings.batch_size, settings.device, settings.amp,
                   ClusterOptions.from_settings(settings), digest_cache=cache_dir_of(settings), **extra)


@dataclass(frozen=True)
class PredictionResult:
    """What a prediction wrote, and how long it took."""

    classes_path: Path
    probabilities_path: Path
    source: RasterSource
    bundle: ModelBundle
    tiles: int
    seconds: float
    skipped: bool
    seconds_predicting: float = 0.0
    """Wall time until the last block was written; the rest went into building the COGs (overviews)."""
    stage_seconds: dict[str, float] = field(default_factory=dict)
    """Worker thread seconds by stage (read, prepare, network, blend, finish, write) and the client's seconds copying
    finished blocks into the outputs (assemble)."""
    resumed_chunks: int = 0
    """Chunks an earlier, interrupted run had finished (read back from its journal, not predicted again)."""


def prepare_source(
    input_path: pystac.Item | str | Path,
    bundle: ModelBundle,
    *,
    force: bool = False,
    band_names: list[str] | None = None,
    product_level: str | None = None,
    input_scale: float = 1.0,
    input_offset: float = 0.0,
    digest_cache: Path | None = None,
    previous: pystac.Item | str | Path | None = None,
) -> RasterSource:
    """Open the input and check it against the bundle's card (bands in order, product level, values once scaled).

    A raster file must hold exactly the card's bands in the card's order; a STAC item's assets are
    picked by band name. A two-date bundle (card `dates = 2`) takes `previous`, an earlier pass of the same place
    on the same grid, checked the same way and stacked after the input (`stack_passes`).

    Raises:
        InvalidInputError: a two-date bundle without `previous`, or a one-date bundle with it.
    """
    dates = bundle.card.dates
    if dates == 2 and previous is None:
        raise InvalidInputError(f"bundle {bundle.id} takes {bundle.card.describe_dates()}; give the earlier pass "
                                "with --previous")
    if dates == 1 and previous is not None:
        raise InvalidInputError(f"--previous {previous if not isinstance(previous, pystac.Item) else previous.id}: "
                                f"bundle {bundle.id} takes one pass; --previous is for two-date bundles")

    def one_pass(location: pystac.Item | str | Path) -> RasterSource:
        return _one_pass(location, bundle, force=force, band_names=band_names, product_level=product_level,
                         input_scale=input_scale, input_offset=input_offset, digest_cache=digest_cache)

    source = one_pass(input_path)
    return source if previous is None else stack_passes(source, one_pass(previous))


def _one_pass(input_path: pystac.Item | str | Path, bundle: ModelBundle, *, force: bool,
              band_names: list[str] | None, product_level: str | None, input_scale: float, input_offset: float,
              digest_cache: Path | None) -> RasterSource:
    """One pass opened and checked against the card (see `prepare_source`)."""
    source = open_source(input_path, band_names=band_names, product_level=product_level, digest_cache=digest_cache)
    wanted = bundle.card.bands
    if not source.fingerprint and set(wanted) <= set(source.band_names):  # a STAC item: its assets, picked by name
        source = source.select(wanted)
    bundle.check_compatible(source.band_names, source.product_level, source=source.location, force=force)
    if force and len(source.band_names) != len(wanted):
        raise BandMismatchError(
            f"{source.location}: {len(source.band_names)} bands cannot feed a model expecting {len(wanted)}, "
            "even forced"
        )
    check_values(source, bundle, force=force, input_scale=input_scale, input_offset=input_offset)
    return source


def check_values(source: RasterSource, bundle: ModelBundle, *, force: bool = False, input_scale: float = 1.0,
                 input_offset: float = 0.0) -> None:
    """Refuse an input without any valid pixel, or whose values lie clearly outside the card's `input_range`.

    Reads at most 9 windows of 128² pixels (the whole raster when small); only when none of them holds a valid
    pixel is the raster scanned further, block by block, for one. Values are checked as the network will see them,
    `value * input_scale + input_offset`.

    Raises:
        EmptyInputError: every pixel is nodata or NaN (a `ForcedMismatchWarning` instead when `force`).
        ValueRangeError: values outside the expected range, e.g. digital numbers given to a reflectance model
            (a `ForcedMismatchWarning` instead when `force`).
    """
    sample = source.sample()
    if sample.shape[1] == 0:
        if not source.any_valid():
            nodata = f"nodata ({source.nodata:g})" if source.nodata is not None else "nodata"
            _refuse(EmptyInputError(f"{source.location}: no valid pixel, every value is {nodata} or NaN: "
                                    "nothing to predict"), force)
        return
    if input_scale != 1.0 or input_offset != 0.0:
        sample = sample * np.float32(input_scale) + np.float32(input_offset)
    problem = _range_problem(source, bundle, sample, scaled=input_scale != 1.0 or input_offset != 0.0)
    if problem:
        _refuse(ValueRangeError(problem), force)


def _refuse(error: GeovigieError, force: bool) -> None:
    if not force:
        raise type(error)(f"{error} (or pass --force)")
    warnings.warn(f"{error}; predicting anyway because forced", ForcedMismatchWarning, stacklevel=3)


def _range_problem(source: RasterSource, bundle: ModelBundle, sample: np.ndarray, scaled: bool = False) -> str | None:
    """What is wrong with the sampled values (bands, pixels) given the card's input range, or None."""
    card = bundle.card
    ranges = card.band_ranges()
    if ranges is None or len(ranges) != sample.shape[0]:
        return None
    outside = []
    for band, (low, high) in enumerate(ranges):
        margin = RANGE_MARGIN * (high - low)
        values = sample[band]
        share = float(np.mean((values < low - margin) | (values > high + margin)))
        if share > OUTSIDE_FRACTION:
            outside.append(band)
    if not outside:
        return None
    median = float(np.median(sample[outside]))
    dtype = _dtype_of(source)
    integers = card.input_dtype == "float" and np.dtype(dtype).kind in "iu"
    looks = "digital numbers" if integers and not scaled else "out of range"
    if scaled:
        dtype = f"{dtype} scaled as asked"
    names = [source.band_names[b] for b in outside]
    shown = ", ".join(names) if len(names) <= 4 else f"{names[0]} … {names[-1]}, {len(names)} bands"
    distinct = sorted({ranges[b] for b in outside})
    expected = " / ".join(f"{low:g}–{high:g}" for low, high in distinct[:3])
    what = card.input_units or "values"
    return (f"{source.location}: values look like {looks} ({dtype}, median {median:.4g} in {shown}); "
            f"bundle {bundle.id} expects {what} {expected}: {_advice(median, card, outside)}")


def _advice(median: float, card: ModelCard, bands: list[int]) -> str:
    """A power-of-ten rescaling when the typical training value (the card's mean; with a scene normalisation, its raw
    medians) suggests one."""
    scene = card.scene_normalisation
    if scene is not None:
        typical = float(np.median([scene.raw_centre[b] for b in bands])) if scene.raw_centre else 0.0
    else:
        typical = float(np.median([card.normalisation.mean[b] for b in bands])) / card.normalisation.scale
    if typical > 0 and median > 0:
        power = round(math.log10(median / typical))
        if power >= 1:
            return f"scale by 1/{10 ** power:d} (input scale {10.0 ** -power:g})"
        if power <= -1:
            return f"scale by {10 ** -power:d} (input scale {10 ** -power:d})"
    return "check the input's units and scaling"


def _dtype_of(source: RasterSource) -> str:
    """The stored data type of the source's first band."""
    import rasterio

    with rasterio.Env(**http_env()), rasterio.open(source.bands[0].href) as src:
        return str(src.dtypes[source.bands[0].index - 1])


def check_device(options: PredictOptions, client: Any = None) -> None:
    """Fail before any work when the device is unusable here and the workers are local (no remote scheduler).

    Raises:
        DeviceUnavailableError: e.g. `cuda` without a GPU.
    """
    remote = bool(options.cluster.scheduler) or (client is not None and getattr(client, "cluster", None) is None)
    if not remote:
        resolve_device(options.device)


def prediction_signature(bundle: ModelBundle, options: PredictOptions) -> str:
    """What a prediction's outputs depend on besides the input (16 hex digits): the weights, the tiling, the input
    scale and offset, the runtime (`auto` resolved here as `predict` resolves it) and int8 quantisation, the
    calibration temperature, the card's scene normalisation (when it has one). The one definition: `run_signature`
    and the batch's job keys both use it, so a change of any of these marks every earlier output stale."""
    runtime = resolve_runtime(options.runtime, bundle)
    parts = [bundle.card.weights_sha256, str(options.tile_size), str(options.overlap),
             f"scale {options.input_scale!r} offset {options.input_offset!r}",
             f"runtime {runtime} quantise {options.quantise}",
             f"temperature {bundle.card.temperature!r}" if bundle.card.calibration is not None else "uncalibrated"]
    if bundle.card.scene_normalisation is not None:  # e.g. a histogram-matching reference lives in the card only
        parts.append(f"scene {bundle.card.scene_normalisation.model_dump_json()}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def run_signature(source: RasterSource, bundle: ModelBundle, options: PredictOptions) -> str:
    """What one prediction's outputs depend on (16 hex digits): `prediction_signature` and the input: an item's id,
    location and per band href, index and declared checksum or size; a file's content SHA-256 (whatever path named
    it) and band indices."""
    parts = [prediction_signature(bundle, options), source.id, str(source.band_names)]
    if source.fingerprint:
        parts += [source.fingerprint, *(str(ref.index) for ref in source.bands)]
    else:
        parts += [source.location, *(f"{ref.href}:{ref.index}:{ref.identity}" for ref in source.bands)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _existing_tags(path: Path) -> dict[str, str]:
    import rasterio

    if not path.exists():
        return {}
    try:
        with rasterio.open(path) as src:
            return dict(src.tags())
    except rasterio.errors.RasterioIOError:
        return {}  # unreadable leftovers are recomputed


def output_paths(out_dir: Path, source: RasterSource, bundle: ModelBundle) -> tuple[Path, Path]:
    """Where the class map and the probabilities of `source` by `bundle` are written: `<source.key>__<bundle>-v<n>`
    in `out_dir`, never outside it.

    Raises:
        InvalidInputError: the input's id cannot name a file, or the path would leave `out_dir` (a symlink).
    """
    stem = f"{source.key}__{safe_name(bundle.card.name, 'bundle name')}-v{safe_name(bundle.card.version, 'version')}"
    return (safe_join(out_dir, f"{stem}_classes.tif", what="output"),
            safe_join(out_dir, f"{stem}_probabilities.tif", what="output"))


def predict(
    input_path: pystac.Item | str | Path,
    out_dir: str | Path,
    options: PredictOptions | None = None,
    *,
    bundle: ModelBundle | str | Path | None = None,
    client: Any = None,
    force: bool = False,
    band_names: list[str] | None = None,
    product_level: str | None = None,
    progress: Progress = True,
    overwrite: bool = False,
    previous: pystac.Item | str | Path | None = None,
) -> PredictionResult:
    """Predict a raster or STAC item tile by tile and write a class-map COG and a probability COG (a two-date
    bundle: with `previous`, the earlier pass of the same place, see `prepare_source`).

    Tiles of `options.tile_size` overlapping by `options.overlap` are predicted in batches of
    `options.batch_size` on Dask workers (a worker plugin loads the network once per worker), chunk by chunk: a
    worker reads its chunk once, blends its tiles' logits with linear ramps, finishes the pixels no other chunk
    touches and writes them into the run's journal (`<out>/.geovigie-partial/`, which workers must see); seam tasks
    finish the thin strips between chunks; the client copies finished blocks into the COGs. Reruns with the same
    input, bundle and tiling return the existing outputs (idempotent); a run that crashed or was killed resumes
    from the chunks its journal holds; no partial output file is ever published; an output of another input with
    the same name is never overwritten silently.

    Before any work, the device, the bundle's weights and the input (bands, product level, a sample of its
    values against the card's input range, at least one valid pixel) are checked; with `force`, mismatches
    become `ForcedMismatchWarning`s, recorded in the outputs' `GEOVIGIE_FORCED` tag. The run holds a lock on
    `out_dir` (a second run on it waits) and first removes the temporary files of runs that were killed.

    Raises:
        InvalidInputError: `out_dir` already holds another input's prediction under the same name, is a file
            or cannot be created.
        DeviceUnavailableError: the device cannot be used here.
        BundleError: corrupt weights.
        BandMismatchError, ValueRangeError, EmptyInputError: the input does not fit the bundle (unless `force`).
    """
    started = time.perf_counter()
    options = options or PredictOptions()
    check_device(options, client)
    bundle = bundle if isinstance(bundle, ModelBundle) else load_bundle(bundle)
    # once per run, here: the workers are told the digest and do not hash again
    check_weights(bundle, options.digest_cache)
    options = dataclasses.replace(options, runtime=resolve_runtime(options.runtime, bundle))
    # a missing, corrupt or stale export, or a pixel classifier asked to run on torch, fails here, before any work
    check_runtime(bundle, options.runtime, "cpu" if client is not None or options.cluster.scheduler else options.device)
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            source = prepare_source(input_path, bundle, force=force, band_names=band_names,
                                    product_level=product_level, input_scale=options.input_scale,
                                    input_offset=options.input_offset, digest_cache=options.digest_cache,
                                    previous=previous)
    finally:
        for w in caught:  # raised again, outside the recording, so the caller's filters apply
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    forced = [str(w.message) for w in caught if issubclass(w.category, ForcedMismatchWarning)]
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInputError(f"--out {out_dir} is a file, not a folder")
    paths = output_paths(out_dir, source, bundle)  # a hostile id fails here, before any folder is created
    with run_lock(out_dir):
        result = _predict_locked(source, bundle, paths, options, client, started, overwrite=overwrite,
                                 progress=progress, forced=forced)
    if options.digest_cache is not None:  # the next run needs not read these files again
        for hashed in ([source.location] if source.fingerprint else []) + [bundle.weights_path]:
            remember(hashed, options.digest_cache)
    return result


def _predict_locked(source: RasterSource, bundle: ModelBundle, paths: tuple[Path, Path], options: PredictOptions,
                    client: Any, started: float, *, overwrite: bool, progress: Progress,
                    forced: list[str]) -> PredictionResult:
    """The part of `predict` that runs while holding the output folder's lock."""
    classes_path, proba_path = paths
    out_dir = classes_path.parent
    signature = run_signature(source, bundle, options)
    chunks = plan_chunks(source.width, source.height, options.tile_size, options.overlap, options.chunk_tiles)
    tiles = sum(len(chunk.tiles) for chunk in chunks)  # the one tile grid of this run
    existing = _existing_tags(classes_path)
    # a file's outputs are named by its content: same name, same input, whatever path named it
    inputs = inputs_label(source)
    if existing and not source.fingerprint and existing.get(INPUTS_TAG) != inputs and not overwrite:
        raise InvalidInputError(
            f"{classes_path} holds the prediction of another input ({existing.get(INPUTS_TAG)}), not of "
            f"{inputs}; use another --out folder (or --overwrite)"
        )
    if not overwrite and existing.get(RUN_TAG) == signature == _existing_tags(proba_path).get(RUN_TAG):
        return PredictionResult(classes_path, proba_path, source, bundle, tiles, 0.0, True)

    card = bundle.card
    journal = open_journal(out_dir, classes_path.name.removesuffix("_classes.tif"), signature,
                           f"chunk_tiles {options.chunk_tiles}")
    profile = {
        "driver": "GTiff", "width": source.width, "height": source.height, "crs": source.crs,
        "transform": source.affine, "dtype": "uint8",
    }
    tags = {RUN_TAG: signature, BUNDLE_TAG: bundle.id, INPUTS_TAG: inputs}
    if forced:
        tags[FORCED_TAG] = " | ".join(forced)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_published_together(classes_path, proba_path, signature))
        classes_dst = stack.enter_context(cog_writer(
            classes_path, profile={**profile, "count": 1, "nodata": NODATA_CLASS},
            band_descriptions=["class"], colormap=palette(card.classes), tags=tags, level=COG_LEVEL,
        ))
        proba_dst = stack.enter_context(cog_writer(
            proba_path, profile={**profile, "count": card.num_classes, "nodata": NODATA_PROBA},
            band_descriptions=[c.name for c in card.classes], overview_resampling="average",
            tags={**tags, "SCALE": f"probability = value / {PROBA_SCALE}"}, level=COG_LEVEL,
            scales=[1 / PROBA_SCALE] * card.num_classes, offsets=[0.0] * card.num_classes,
        ))

        def write(window: Window4, block: np.ndarray) -> None:
            target = Window(*window)
            classes_dst.write(block[:1], window=target)
            proba_dst.write(block[1:], window=target)

        client_cm = contextlib.nullcontext(client) if client is not None else dask_client(options.cluster)
        active = stack.enter_context(client_cm)
        job = ChunkJob(str(bundle.path), options.device, options.amp, options.overlap, options.batch_size,
                       options.runtime, options.channels_last, options.quantise, options.cluster.torch_threads(),
                       options.input_scale, options.input_offset, bundle.card.weights_sha256,
                       scene_maps(source, card, options.input_scale, options.input_offset))
        stages, resumed = _run_chunks(active, source, chunks, job, journal, write, progress)
        predicted = time.perf_counter() - started
    journal.remove()
    return PredictionResult(classes_path, proba_path, source, bundle, tiles,
                            time.perf_counter() - started, False, predicted, stages, resumed)


@contextlib.contextmanager
def _published_together(classes_path: Path, proba_path: Path, signature: str) -> Iterator[None]:
    """The two COGs are renamed into place one after the other: when the run fails between the two (e.g. SIGTERM
    while the second is built), the one it published is removed again, so no half pair is ever left."""
    try:
        yield
    except BaseException:
        written = [path for path in (classes_path, proba_path) if _existing_tags(path).get(RUN_TAG) == signature]
        if len(written) == 1:
            written[0].unlink(missing_ok=True)
        raise


def _run_chunks(client: Any, source: RasterSource, chunks: list[Chunk], job: ChunkJob, journal: RunJournal,
                write: Callable[[Window4, np.ndarray], None], progress: Progress) -> tuple[dict[str, float], int]:
    """Submit the chunks the journal lacks, with bounded look-ahead; once every chunk around a seam cell is done,
    submit its seam; copy each finished block from the journal into the scratch files as it comes.

    Returns the thread seconds by stage, summed over the chunks computed, the client's `assemble` seconds, and how
    many chunks an earlier run had finished.
    """
    from distributed import as_completed

    from geovigie.progress import progress_bar

    owners: dict[Window4, list[int]] = {}
    for chunk in chunks:
        for cell in chunk.cells:
            if cell.owners > 1:
                owners.setdefault(cell.window, []).append(chunk.index)
    waiting = {window: len(indices) for window, indices in owners.items()}
    check_workers_see(client, journal.path)
    client.register_plugin(PredictorPlugin(job))
    workers = client.scheduler_info().get("workers", {})
    slots = sum(int(w.get("nthreads", 1)) for w in workers.values()) or 1
    max_in_flight = max(2, slots + 1)  # every worker thread busy, and one chunk read ahead
    done = journal.done_chunks()
    todo = collections.deque(chunk for chunk in chunks if chunk.index not in done)
    stages: dict[str, float] = {"assemble": 0.0}
    running = as_completed()
    in_flight = 0

    def submit_chunks() -> None:
        nonlocal in_flight
        while todo and in_flight < max_in_flight:
            running.add(client.submit(predict_chunk, source, todo.popleft(), job, journal, pure=False))
            in_flight += 1

    def chunk_done(chunk: Chunk) -> None:
        clock = time.perf_counter()
        write(chunk.own_cell.window, _journal_read(journal, journal.read_block, chunk.index))
        for cell in chunk.cells:
            if cell.owners == 1:
                continue
            waiting[cell.window] -= 1
            if waiting[cell.window] == 0:
                if journal.seam(cell.window).exists():
                    write(cell.window, journal.read_seam(cell.window))
                else:
                    running.add(client.submit(finish_seam, cell.window, tuple(owners[cell.window]), journal,
                                              pure=False, priority=1))
        stages["assemble"] += time.perf_counter() - clock

    with progress_bar(f"predict {source.key}", total=sum(len(c.tiles) for c in chunks), enabled=progress) as advance:
        submit_chunks()
        for chunk in chunks:
            if chunk.index in done:
                chunk_done(chunk)
                advance(len(chunk.tiles))
        for future in running:
            report = future.result()
            future.release()
            if isinstance(report, ChunkReport):
                in_flight -= 1
                submit_chunks()
                chunk_done(chunks[report.index])
                for stage, seconds in report.seconds.items():
                    stages[stage] = stages.get(stage, 0.0) + seconds
                advance(report.tiles)
            else:
                clock = time.perf_counter()
                write(report, _journal_read(journal, journal.read_seam, report))
                stages["assemble"] += time.perf_counter() - clock
    return stages, len(done)


def check_workers_see(client: Any, folder: Path) -> None:
    """Fail before any work when a worker cannot see `folder` (the run's journal, where workers write their blocks).

    Raises:
        InvalidInputError: naming the workers and the folder: on a cluster the output folder must be shared.
    """
    seen = client.run(os.path.isdir, str(folder))
    blind = sorted(address for address, visible in seen.items() if not visible)
    if blind:
        raise InvalidInputError(
            f"{folder}: not visible from worker(s) {', '.join(blind)}; workers write their blocks there, so on a "
            "cluster the output folder must be on a file system shared by the workers and the client")


def _journal_read(journal: RunJournal, read: Callable[[Any], np.ndarray], key: Any) -> np.ndarray:
    """A block a worker wrote into the journal.

    Raises:
        InvalidInputError: the file is not there: the workers write into a folder this machine does not see.
    """
    try:
        return read(key)
    except FileNotFoundError as err:
        raise InvalidInputError(
            f"{err.filename}: the workers wrote their blocks into {journal.path}, which this machine cannot see; on "
            "a cluster the output folder must be on a file system shared by the workers and the client") from err
