"""`geovigie train CONFIG`: load the data, split, train, evaluate beside the baselines, write a bundle."""

from __future__ import annotations

import logging
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.warp
import torch

import geovigie.models as gv_models
from geovigie.atomic import write_json_atomic
from geovigie.errors import InvalidInputError
from geovigie.models import (
    Architecture,
    ClassInfo,
    ModelBundle,
    ModelCard,
    Normalisation,
    SceneNormalisation,
    build_network,
    export_onnx,
    load_bundle,
    normalise_scene,
    save_bundle,
    save_pixel_bundle,
)
from geovigie.models import resolve_device as _resolve_device
from geovigie.training._config import ALL_FOLDS, Candidate, ConfigError, ExperimentConfig, load_config
from geovigie.training._data import Scene, image_sources, load_scenes, mapping_of
from geovigie.training._evaluate import Predictions, evaluate, scene_logits, set_masks
from geovigie.training._feedback import field_provenance
from geovigie.training._hooks import CHECKPOINT, fingerprint
from geovigie.training._parallel import Distributed, setup_distributed
from geovigie.training._pixels import PixelCandidate, scene_normalisation
from geovigie.training._samplers import ChipSampler
from geovigie.training._select import MAJORITY, PRIMARY_SETS, candidates_of, primary_set, select_for, verdict
from geovigie.training._split import EmptySplitError, SceneSplit, check_split, spatial_split
from geovigie.training._stacks import check_acquired, stacked_inputs
from geovigie.training._targets import IGNORE, class_weights_for
from geovigie.training._trainer import FitResult, TrainData, fit

log = logging.getLogger(__name__)
SUMMARY_SETS = (*PRIMARY_SETS[:1], "folds_heldout", *PRIMARY_SETS[1:])


@dataclass
class ExperimentResult:
    """What a run wrote: the bundle, the run folder, the loop's history and every metric."""

    bundle: ModelBundle
    run_dir: Path
    fit: FitResult
    metrics: dict[str, Any]
    counts: dict[str, int]


def normalisation_of(images: list[np.ndarray], masks: list[np.ndarray], kind: str) -> Normalisation:
    """Per-band statistics of the training pixels: mean / std (`global`) or median / IQR / 1.349 (`robust`)."""
    pixels = np.concatenate([img[:, m] for img, m in zip(images, masks, strict=True)], axis=1).astype(np.float64)
    if kind == "robust":
        low, mid, high = np.percentile(pixels, [25, 50, 75], axis=1)
        centre, spread = mid, (high - low) / 1.349
    else:
        centre, spread = pixels.mean(axis=1), pixels.std(axis=1)
    spread = np.where(spread > 1e-6, spread, 1.0)
    return Normalisation(scale=1.0, mean=centre.tolist(), std=spread.tolist())


def _class_counts(scenes: list[Scene], masks: list[np.ndarray], n: int) -> np.ndarray:
    labels = np.concatenate([s.labels[m] for s, m in zip(scenes, masks, strict=True)])
    return np.bincount(labels[labels != IGNORE].astype(np.int64), minlength=n)[:n]


def _optional(name: str) -> Any:
    """A function of geovigie.models that a newer bundle format provides, or None."""
    return getattr(gv_models, name) if name in getattr(gv_models, "__all__", []) else None


def _pixels(logits: dict[str, np.ndarray], labels: dict[str, np.ndarray],
            masks: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """Logits (N, classes) and labels (N,) of the labelled pixels of a set, or None."""
    xs, ys = [], []
    for name, mask in masks.items():
        if name not in logits:  # a multi-date model does not predict an area's first pass
            continue
        keep = mask & (labels[name] != IGNORE)
        if keep.any():
            xs.append(logits[name][:, keep].T)
            ys.append(labels[name][keep].astype(np.int64))
    return (np.concatenate(xs), np.concatenate(ys)) if xs else None


def _calibration(logits: dict[str, np.ndarray], labels: dict[str, np.ndarray],
                 split: dict[str, SceneSplit]) -> tuple[Any, dict[str, Any]]:
    """Temperature fitted on the validation pixels; ECE with T = 1 and with T on every held-out set.

    T is kept only if it does not raise the ECE of the test blocks (of the trained images; of the held-out ones
    when there are none): otherwise the card keeps T = 1 and says why. Returns (card calibration or None, report).
    """
    calibrate, ece, softmax = (_optional(n) for n in ("calibrate", "expected_calibration_error", "softmax"))
    sets = set_masks(split)
    val = _pixels(logits, labels, sets.get("validation", {}))
    if calibrate is None or ece is None or softmax is None or val is None:
        return None, {}
    fitted = calibrate(*val, ignore=IGNORE, fitted_on="validation blocks of the training images")
    temperature = float(fitted.temperature)
    report: dict[str, Any] = {"fitted_temperature": temperature, "bins": fitted.bins, "ece": {
        "validation": {"t1": fitted.ece_before, "fitted": fitted.ece_after, "pixels": fitted.pixels}}}
    for set_name in ("test_blocks", "heldout_test_blocks", "heldout"):
        pixels = _pixels(logits, labels, sets.get(set_name, {}))
        if pixels is not None:
            report["ece"][set_name] = {"t1": ece(softmax(pixels[0]), pixels[1], None, fitted.bins),
                                       "fitted": ece(softmax(pixels[0], temperature), pixels[1], None, fitted.bins),
                                       "pixels": int(len(pixels[1]))}
    decide = next((k for k in ("test_blocks", "heldout_test_blocks", "heldout") if k in report["ece"]), None)
    report["decided_on"] = decide
    if decide is None or report["ece"][decide]["fitted"] <= report["ece"][decide]["t1"]:
        report["kept_temperature"] = temperature
        return fitted, report
    held = report["ece"][decide]
    report["kept_temperature"] = 1.0
    note = (f"validation blocks of the training images; T = {temperature:.3f} fitted there lowered their ECE "
            f"({fitted.ece_before:.3f} -> {fitted.ece_after:.3f}) but raised the ECE of the {decide.replace('_', ' ')} "
            f"({held['t1']:.3f} -> {held['fitted']:.3f}): kept T = 1")
    return fitted.model_copy(update={"temperature": 1.0, "ece_after": fitted.ece_before, "fitted_on": note}), report


def _bbox_wgs84(scenes: list[Scene]) -> list[float]:
    boxes = [rasterio.warp.transform_bounds(s.grid.crs, "EPSG:4326", *s.grid.bounds) for s in scenes]
    return [round(f(b[i] for b in boxes), 6) for i, f in enumerate((min, min, max, max))]


def _input_dtype(scene: Scene) -> str:
    with rasterio.open(scene.files[0]) as src:
        return "float" if src.dtypes[0].startswith("float") else "int"


def run_experiment(config: ExperimentConfig | str | Path, out_dir: str | Path, *, resume: bool = False,
                   device: str = "auto", progress: bool = True, bundle_dir: str | Path | None = None,
                   command: str = "geovigie train", all_folds: bool = False) -> ExperimentResult | None:
    """Train the experiment `config` into `out_dir` (checkpoint, metrics.csv, config.json, bundle/).

    With `split.holdout = "all"` (or `all_folds`), every date (or area) is held out in turn: each fold trains in
    `out_dir/folds/<date>` (`split.fold_epochs` epochs) and is scored with the random forest and the majority class
    on the held-out date; then the bundle is trained on all dates (spatial blocks) and its card records the
    per-fold and mean numbers (`folds_heldout_test_blocks`, `folds_heldout`).

    Returns None on ranks other than 0 of a torchrun job (rank 0 writes everything).

    Raises:
        ConfigError, LabelError, EmptySplitError, CheckpointError, InputNotFoundError: bad input, with what to do.
    """
    config = config if isinstance(config, ExperimentConfig) else load_config(config)
    _check_before_work(config, Path(out_dir), bundle_dir, resume=resume)
    if all_folds:
        if config.split.mode == "blocks":
            raise ConfigError("--all-folds needs split.mode = 'leave-one-date-out' or 'leave-one-area-out'")
        config = config.model_copy(deep=True)
        config.split.holdout = ALL_FOLDS
    if config.split.rotates:
        result = _rotate(config, Path(out_dir), bundle_dir, resume=resume, device=device, progress=progress,
                         command=command)
    else:
        result = _train(config, Path(out_dir), bundle_dir=bundle_dir, resume=resume, device=device,
                        progress=progress, command=command)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return result


def _check_before_work(config: ExperimentConfig, out_dir: Path, bundle_dir: str | Path | None, *,
                       resume: bool) -> None:
    """What can be refused before any image is read or any file written (issue 16's training cases)."""
    if resume and not (out_dir.is_dir() and any(out_dir.rglob(CHECKPOINT))):
        raise InvalidInputError(f"--resume: no checkpoint in {out_dir} to continue; drop --resume to train from "
                                "scratch")
    if bundle_dir is not None and Path(bundle_dir).exists() and not Path(bundle_dir).is_dir():
        raise InvalidInputError(f"--bundle {bundle_dir} is an existing file: name a folder for the bundle")
    if any(c.dates > 1 for c in candidates_of(config)):  # passes are ordered by their dates (STAC items: datetime)
        check_acquired(config.images.files)
    bands = config.images.bands or _first_image_bands(config)
    for spec in candidates_of(config):  # a pixel candidate's bands and indices, by band name or common name
        if spec.kind != "network" and bands:
            PixelCandidate(spec, bands, len(config.classes), config.train.seed, config.images.common_names)
    if any(c.kind == "network" for c in candidates_of(config)):
        try:  # an untrained network of the config's architecture: refuses an unknown encoder in a second or so
            build_network(Architecture(**config.model.model_dump()), 1, 2)
        except (KeyError, ValueError, RuntimeError) as error:
            message = str(error).strip("'\"").split(", supported")[0]
            raise ConfigError(f"[model] {config.model.name} with encoder {config.model.encoder!r}: {message}") \
                from None
    smallest = _smallest_image(config)
    if smallest is not None and config.train.chip_size > smallest:
        raise ConfigError(f"[train] chip_size = {config.train.chip_size} is larger than the smallest image "
                          f"({smallest} px): choose at most {smallest}")


def _smallest_image(config: ExperimentConfig) -> int | None:
    """The smallest side of the config's image files (None when they are STAC items or unreadable: later checks
    name those)."""
    sides = []
    for entry in config.images.files:
        for path in (config.resolve(f) for f in entry.files):
            if not path.is_file():
                continue
            try:
                with rasterio.open(path) as src:
                    sides.append(min(src.width, src.height))
            except rasterio.RasterioIOError:
                continue
    return min(sides) if sides else None


def _first_image_bands(config: ExperimentConfig) -> list[str] | None:
    """The band descriptions of the first image file when it names every band (None otherwise: later checks say)."""
    entry = next(iter(config.images.files), None)
    if entry is None or len(entry.files) != 1 or not config.resolve(entry.files[0]).is_file():
        return None
    try:
        with rasterio.open(config.resolve(entry.files[0])) as src:
            names = list(src.descriptions)
    except rasterio.RasterioIOError:
        return None
    return names if all(names) else None


def _fold_name(value: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in value) or "fold"


def fold_summary(folds: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`folds_heldout_test_blocks`, `folds_heldout_space` and `folds_heldout`: per model, the mean over folds and each
    fold's numbers."""
    out: dict[str, Any] = {}
    for set_name in ("heldout_test_blocks", "heldout_space", "heldout"):
        present = {f: m[set_name] for f, m in folds.items() if set_name in m}
        if not present:
            continue
        models = {}
        names = [n for n in next(iter(present.values())) if all(n in m for m in present.values())]
        for model in names:
            per_fold = {f: {k: m[model][k] for k in ("overall_accuracy", "miou", "pixels")} for f, m in present.items()}
            oa = [v["overall_accuracy"] for v in per_fold.values() if v["overall_accuracy"] is not None]
            miou = [v["miou"] for v in per_fold.values() if v["miou"] is not None]
            models[model] = {"overall_accuracy": float(np.mean(oa)) if oa else None,
                             "miou": float(np.mean(miou)) if miou else None,
                             "pixels": int(sum(v["pixels"] for v in per_fold.values())), "per_fold": per_fold,
                             "folds_scored": sum(v["pixels"] > 0 for v in per_fold.values())}
        out[f"folds_{set_name}"] = models
    return out


def _rotate(config: ExperimentConfig, run_dir: Path, bundle_dir: str | Path | None, *, resume: bool, device: str,
            progress: bool, command: str) -> ExperimentResult | None:
    """Every leave-one-out fold (reduced budget: split.fold_epochs), then the bundle trained on all images."""
    if config.split.mode == "spatial-folds":  # one date: whole polygons held out, nothing held out in time
        key, values = "spatial fold", [str(k) for k in range(1, config.split.folds + 1)]
    else:
        key = "date" if config.split.mode == "leave-one-date-out" else "area"
        values = sorted({getattr(s, key) for s in image_sources(config)})
    if len(values) < 2:
        raise EmptySplitError(f"split.holdout = 'all' needs at least 2 {key}s to rotate over (found {values})")
    folds: dict[str, dict[str, Any]] = {}
    best: dict[str, int] = {}
    epochs = config.split.fold_epochs or config.train.epochs
    for value in values:
        fold = config.model_copy(deep=True)
        fold.split.holdout, fold.train.epochs, fold.output.onnx = value, epochs, False
        log.info("fold %s = %s held out (%d epochs)", key, value, epochs)
        result = _train(fold, run_dir / "folds" / _fold_name(value), bundle_dir=None, resume=resume, device=device,
                        progress=progress, command=command, origin=config)
        if result is None:  # not rank 0: rank 0 gathers the metrics
            continue
        folds[value], best[value] = result.metrics, result.fit.best_epoch
    final = config.model_copy(deep=True)
    final.split.mode, final.split.holdout = "blocks", None
    extra = {**fold_summary(folds), "folds": {
        "held_out": key, "values": values, "fold_epochs": epochs,
        "final_model": f"trained on all {len(values)} {key}s ({config.train.epochs} epochs, spatial blocks) after "
                       f"the folds; the folds' held-out numbers estimate how it does on a new {key}",
        "kept_epoch": best}} if folds else {}
    stacks = {v: m["training_stacks"] for v, m in folds.items() if "training_stacks" in m}
    if stacks:  # multi-date candidates: the stacks each fold trained on (none holds its held-out date)
        extra["folds"]["training_stacks"] = stacks
    only = None
    if config.candidates and folds:
        only, extra["selection"] = select_for(config, extra)
        extra["selection"]["why"] = _why(extra["selection"], len(values), key)
    return _train(final, run_dir, bundle_dir=bundle_dir, resume=resume, device=device, progress=progress,
                  command=command, origin=config, extra_metrics=extra, only=only)


def _why(selection: dict[str, Any], folds: int, key: str) -> str:
    table, winner, metric = selection["table"], selection["winner"], selection["metric"]
    def score(value: float | None) -> str:  # None: a held-out date or area without labels of that kind
        return "-" if value is None else f"{value:.3f}"

    short = selection.get("not_eligible", {})
    rows = "; ".join(f"{n} {score(r['overall_accuracy'])} / {score(r['miou'])}"
                     + (f" ({short[n]}: not eligible)" if n in short else "") for n, r in table.items())
    held = f"mean of {folds} folds, each {key} held out in turn" if folds > 1 else f"the held-out {key}"
    what = metric.replace("_", " ")
    best = selection.get("best", winner)
    claim = (f"{winner} has the best {what}" if best == winner else
             f"{winner} is the first listed candidate within {selection['tolerance']:g} {what} of the best "
             f"({best})")
    scope = selection.get("scope")
    if scope is not None:
        kinds = " / ".join(scope["kinds"])
        claim = claim.replace(" candidate ", f" {kinds} candidate ") if best != winner else \
            f"{claim} among the {kinds} candidates"
    text = (f"{claim} on {selection['set']} ({held}; overall accuracy / mIoU: {rows}); chosen there, never on "
            "validation blocks.")
    if scope is not None and scope["overall_winner"] != winner:
        overall = scope["overall_winner"]
        ships = f", shipped as {scope['overall_winner_bundle']}" if scope["overall_winner_bundle"] else ""
        text += (f" Only {kinds} candidates could win here (selection.kinds): this is the best {kinds}, not the best "
                 f"model; by the same rule over every candidate the winner is {overall} ({what} "
                 f"{score(table[overall][metric])} vs {score(table[winner][metric])}{ships}).")
    return text


def _train(config: ExperimentConfig, run_dir: Path, *, bundle_dir: str | Path | None, resume: bool, device: str,
           progress: bool, command: str, origin: ExperimentConfig | None = None,
           extra_metrics: dict[str, Any] | None = None, only: str | None = None) -> ExperimentResult | None:
    """One training run on one split: every candidate (or `only` that one), scored beside the majority class
    (`origin`: the config as written, saved into the card)."""
    torch_device = _resolve_device(device)
    dist = setup_distributed(torch_device)
    if dist.world > 1 and torch_device.type == "cuda":
        torch_device = torch.device("cuda", dist.local_rank)
    if not resume and (run_dir / CHECKPOINT).exists():
        raise InvalidInputError(f"{run_dir} already holds a training checkpoint: pass --resume to continue it, or "
                                "choose another --out")
    scenes, bands = load_scenes(config)
    sp = config.split
    split = spatial_split(scenes, mode=sp.mode, block_px=sp.block_px, buffer_px=sp.buffer_px,
                          val_fraction=sp.val_fraction, test_fraction=sp.test_fraction, seed=sp.seed,
                          holdout=sp.holdout, folds=sp.folds, class_names=config.class_names)
    counts = check_split(scenes, split, IGNORE, need_val=sp.val_fraction > 0)
    names = config.class_names
    train_masks = [split[s.name].train for s in scenes]
    norm = normalisation_of([s.image for s in scenes], train_masks, config.images.normalisation)
    class_counts = _class_counts(scenes, train_masks, len(names))
    candidates = [c for c in candidates_of(config) if only is None or c.name == only]
    if dist.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(run_dir / "config.json", config.dump())
    pixels = [PixelCandidate(c, bands, len(names), config.train.seed, config.images.common_names)
              for c in candidates if c.kind != "network"]
    networks, unscored = [], []
    held_out = {name for name, masks in split.items() if masks.heldout}
    for k, spec in enumerate(c for c in candidates if c.kind == "network"):
        inputs, own_split, previous = _network_inputs(scenes, split, held_out, spec.dates)
        own = [s for s in scenes if s.name in inputs]
        own_masks = [own_split[s.name].train for s in own]
        if not any(m.any() for m in own_masks):
            log.warning("candidate %s: no training stack without a held-out date; not scored", spec.name)
            unscored.append(spec.name)
            continue
        scene = scene_normalisation(spec.scene, [inputs[s.name] for s in own], own_masks)
        images = [normalise_scene(inputs[s.name], scene) for s in own]
        own_norm = norm if scene is None and spec.dates == 1 else normalisation_of(images, own_masks,
                                                                                    config.images.normalisation)
        own_counts = counts | {"val": int(sum((own_split[s.name].val & (s.labels != IGNORE)).sum() for s in own))}
        where = run_dir if k == 0 else run_dir / "candidates" / spec.name  # the first keeps the v2 layout
        arch, network, result = _fit_network(config, spec, own, images, len(bands) * spec.dates, own_split,
                                             own_counts, own_norm, class_counts, torch_device, where, resume=resume,
                                             progress=progress, dist=dist)
        trained_on = [f"{s.name} + {previous[s.name]}" for s, m in zip(own, own_masks, strict=True) if m.any()]
        networks.append(NetworkRun(spec.name, arch, network, result, scene, own_norm,
                                   {s.name: image for s, image in zip(own, images, strict=True)}, spec.dates,
                                   trained_on if spec.dates > 1 else []))
    if not dist.main:
        return None
    trained = Trained(networks, pixels, FitResult(device=str(torch_device)), unscored)
    return _finish(config, scenes, bands, split, counts, class_counts, norm, trained, torch_device,
                   run_dir, Path(bundle_dir) if bundle_dir else run_dir / "bundle", dist, command,
                   origin or config, extra_metrics or {})


def _network_inputs(scenes: list[Scene], split: dict[str, SceneSplit], held_out: set[str], dates: int,
                    ) -> tuple[dict[str, np.ndarray], dict[str, SceneSplit], dict[str, str | None]]:
    """A network candidate's raw inputs (multi-date: stacks, `training._stacks`), its split (the training and
    validation blocks of a stack holding a held-out date are dropped) and each image's previous pass."""
    inputs, masks, previous = stacked_inputs(scenes, [split[s.name].train for s in scenes], held_out, dates)
    if dates == 1:
        return inputs, split, previous
    own = {}
    for scene, mask in zip(scenes, masks, strict=True):
        if scene.name in inputs:
            part = split[scene.name]
            clean = held_out.isdisjoint((scene.name, previous[scene.name]))
            own[scene.name] = SceneSplit(mask, part.val if clean else np.zeros_like(part.val), part.test,
                                         part.heldout)
    return inputs, own, previous


@dataclass
class NetworkRun:
    """One network candidate: its row name, architecture, module, loop history, scene normalisation, the card
    normalisation of its (scene-normalised) training pixels and the images it saw."""

    name: str
    arch: Architecture
    network: torch.nn.Module
    fit: FitResult
    scene: SceneNormalisation | None
    norm: Normalisation
    images: dict[str, np.ndarray]
    dates: int = 1
    stacks: list[str] = field(default_factory=list)
    """Multi-date: the stacks (image + previous pass) it trained on."""


@dataclass
class Trained:
    """The candidates of one run: the networks and the pixel classifiers (fitted in `_finish`); `unscored`: network
    candidates left without any training pixel (a multi-date one whose every stack holds a held-out date)."""

    networks: list[NetworkRun]
    pixels: list[PixelCandidate]
    no_fit: FitResult
    unscored: list[str] = field(default_factory=list)

    def fit_of(self, name: str) -> FitResult:
        """The loop history of network `name` (of the first network, or an empty one, for a pixel classifier)."""
        runs = [n for n in self.networks if n.name == name] or self.networks
        return runs[0].fit if runs else self.no_fit


def _fit_network(config: ExperimentConfig, spec: Candidate, scenes: list[Scene], images: list[np.ndarray],
                 channels: int, split: dict[str, SceneSplit], counts: dict[str, int], norm: Normalisation,
                 class_counts: np.ndarray, device: torch.device, run_dir: Path, *, resume: bool, progress: bool,
                 dist: Distributed) -> tuple[Architecture, torch.nn.Module, FitResult]:
    names = config.class_names
    opt = config.train if spec.augment is None else config.train.model_copy(update={"augment": spec.augment})
    train_masks = [split[s.name].train for s in scenes]
    data = TrainData(
        images=images,
        train=ChipSampler([s.labels for s in scenes], train_masks, opt.chip_size, len(names)),
        val=ChipSampler([s.labels for s in scenes], [split[s.name].val for s in scenes], opt.chip_size, len(names))
        if counts["val"] else None,
        norm=norm, weights=class_weights_for(class_counts, opt.class_weights), class_names=names)
    torch.manual_seed(opt.seed)
    arch = Architecture(**config.model.model_dump())
    network = build_network(arch, channels, len(names))
    config_hash = fingerprint({k: v for k, v in config.dump().items() if k != "output"} | {"candidate": spec.name})
    result = fit(network, data, opt, device, run_dir, config_hash=config_hash, resume=resume, progress=progress,
                 dist=dist)
    dist.barrier()
    return arch, network, result


def _finish(config: ExperimentConfig, scenes: list[Scene], bands: list[str], split: dict[str, SceneSplit],
            counts: dict[str, int], class_counts: np.ndarray, norm: Normalisation, trained: Trained,
            device: torch.device, run_dir: Path, bundle_dir: Path, dist: Distributed, command: str,
            origin: ExperimentConfig, extra: dict[str, Any]) -> ExperimentResult:
    names, opt = config.class_names, config.train
    labels = {s.name: s.labels for s in scenes}
    logits: dict[str, dict[str, np.ndarray]] = {}
    for run in trained.networks:
        logits[run.name] = {name: scene_logits(run.network, image, run.norm, device)
                            for name, image in run.images.items()}
    logits |= dict.fromkeys(trained.unscored, {})
    train_masks = [split[s.name].train for s in scenes]
    held_out = {name for name, masks in split.items() if masks.heldout}
    inputs: dict[str, dict[str, np.ndarray]] = {}
    stacks: dict[str, list[str]] = {}
    for candidate in trained.pixels:  # multi-date: stacks with the previous pass; none holding a held-out date
        images, masks, previous = stacked_inputs(scenes, train_masks, held_out, candidate.spec.dates)
        inputs[candidate.spec.name] = images
        if candidate.spec.dates > 1:
            stacks[candidate.spec.name] = [f"{s.name} + {previous[s.name]}" for s, m in zip(scenes, masks, strict=True)
                                           if m.any()]
        fitted = [(images[s.name], s.labels, m) for s, m in zip(scenes, masks, strict=True) if s.name in images]
        if not any(m.any() for _, _, m in fitted):
            log.warning("candidate %s: no training stack without a held-out date; not scored", candidate.spec.name)
            logits[candidate.spec.name] = {}
            continue
        candidate.fit(*(list(column) for column in zip(*fitted, strict=True)))
        logits[candidate.spec.name] = {name: candidate.logits(image) for name, image in images.items()}
    majority = int(np.argmax(class_counts))
    models = [Predictions(name, {scene: out.argmax(axis=0).astype(np.uint8) for scene, out in per_scene.items()})
              for name, per_scene in logits.items()]
    models.append(Predictions(MAJORITY, {s.name: np.full(s.labels.shape, majority, np.uint8) for s in scenes}))
    metrics: dict[str, Any] = {**evaluate(models, labels, split, names), **extra}
    stacks |= {run.name: run.stacks for run in trained.networks if run.dates > 1}
    if stacks:
        metrics["training_stacks"] = stacks
    shipped = trained.networks[0].name if trained.networks else trained.pixels[0].spec.name
    if config.candidates and "selection" not in metrics:  # one held-out date or area: chosen on it, in this run
        shipped, metrics["selection"] = select_for(config, metrics)
        metrics["selection"]["why"] = _why(metrics["selection"], 1, "date or area")
    pixel = next((p for p in trained.pixels if p.spec.name == shipped), None)
    net = next((n for n in trained.networks if n.name == shipped), None)
    metrics["primary_set"] = primary_set(metrics)
    metrics["shipped_model"] = shipped
    metrics["training_history"] = trained.fit_of(shipped).history
    calibration, metrics["calibration"] = _calibration(logits[shipped], labels, split)
    pixels_per_set = {k: int(sum((v[n] & (labels[n] != IGNORE)).sum() for n in v))
                      for k, v in set_masks(split).items()}
    mapping = mapping_of(config)
    result = trained.fit_of(shipped)
    scene = pixel.scene if pixel is not None else net.scene if net is not None else None
    if pixel is not None and scene is not None:  # the graph takes values normalised on the mapped scenes
        own = inputs[pixel.spec.name]
        norm = normalisation_of([pixel.prepare(own[s.name]) for s in scenes if s.name in own],
                                [m for s, m in zip(scenes, train_masks, strict=True) if s.name in own],
                                config.images.normalisation)
    elif pixel is not None and pixel.spec.dates > 1:  # the card's normalisation has one entry per input channel
        norm = Normalisation(scale=norm.scale, mean=norm.mean * pixel.spec.dates, std=norm.std * pixel.spec.dates)
    elif net is not None:
        norm = net.norm
    root = repository_root(config.base_dir)
    field = field_provenance(config, mapping, [s.grid for s in scenes])
    if "field_label_files" in field:
        field["field_label_files"] = [recorded_path(f, root) for f in field["field_label_files"]]
    provenance = {
        "data": config.output.data or config.output.description,
        "bbox": _bbox_wgs84(scenes),
        "images": [{"name": s.name, "files": [recorded_path(f, root) for f in s.files], "date": s.date,
                    "area": s.area} for s in scenes],
        "labels": {"source": config.labels.source,
                   "path": recorded_path(config.resolve(config.labels.path), root) if config.labels.path else None,
                   "attribute": config.labels.attribute, "unlabelled": config.labels.unlabelled,
                   "ignored_source_values": sorted(mapping.ignored), **field},
        "split": (f"{config.split.mode}: map-aligned blocks of {config.split.block_px} px, "
                  f"{config.split.val_fraction:.0%} validation and {config.split.test_fraction:.0%} test blocks "
                  f"(seed {config.split.seed}), {config.split.buffer_px} px buffer dropped around them"
                  + (f"; held out: {config.split.holdout}" if config.split.holdout else "")
                  + (f"; before it, {origin.split.mode} folds held out each of {extra['folds']['values']} in turn "
                     f"({extra['folds']['fold_epochs']} epochs each)" if "folds" in extra else "")
                  + ("; spatial folds: whole labelled polygons (8-connected), grouped by the block holding their "
                     "centre; one date, nothing held out in time" if origin.split.mode == "spatial-folds" else "")),
        "labelled_pixels_per_set": pixels_per_set,
        "train_label_pixels_per_class": dict(zip(names, class_counts.tolist(), strict=True)),
        "training": opt.model_dump(mode="json") | {"device": result.device, "amp": result.amp,
                                                   "world_size": dist.world, "epochs_run": len(result.history),
                                                   "best_epoch": result.best_epoch,
                                                   "stopped_early": result.stopped_early,
                                                   "resumed_from_epoch": result.resumed_from},
        "baselines": {**{p.spec.name: f"{p.describe()} on {p.training_pixels} training pixels (seed {opt.seed})"
                         for p in trained.pixels}, MAJORITY: names[majority]},
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "software": _software(),
        "command": command,
    }
    limitations = " ".join(t for t in (config.output.limitations, metrics.get("selection", {}).get("why", ""),
                                       verdict(metrics, shipped)) if t)
    fields: dict[str, Any] = {
        "name": config.output.name, "version": config.output.version, "bands": bands,
        "product_level": config.images.product_level, "normalisation": norm, "scene_normalisation": scene,
        "input_range": config.images.input_range, "input_dtype": _input_dtype(scenes[0]),
        "input_units": config.images.input_units, "pixel_size_m": abs(scenes[0].grid.transform.a),
        "classes": [ClassInfo(value=i, name=c.name, color=c.color,
                              description=c.description or f"source values {c.sources}")
                    for i, c in enumerate(config.classes)],
        "ignore_value": IGNORE, "provenance": provenance, "metrics": metrics, "limitations": limitations,
        "config": origin.dump(), "calibration": calibration,
        "label_mapping": {**mapping.to_class, **dict.fromkeys(mapping.ignored, IGNORE)},
    }
    if pixel is not None:  # the graph undoes the card's normalisation: the forest was fitted on raw values
        fields |= {"kind": "pixel-classifier", "pixel": pixel.features, "dates": pixel.spec.dates}
        bundle = save_pixel_bundle(bundle_dir, pixel.to_onnx(norm), ModelCard(**fields))
    else:
        assert net is not None
        bundle = save_bundle(bundle_dir, net.network.cpu(), ModelCard(**fields, architecture=net.arch, dates=net.dates))
        if config.output.onnx:  # ONNX beside the weights, recorded in the card
            export_onnx(bundle_dir)
            bundle = load_bundle(bundle_dir)
    log.info("bundle written to %s", bundle_dir)
    return ExperimentResult(bundle, run_dir, result, metrics, counts)


def repository_root(folder: str | Path) -> Path | None:
    """The git repository holding `folder` (the nearest ancestor with a `.git`), or None."""
    start = Path(folder).resolve()
    return next((p for p in (start, *start.parents) if (p / ".git").exists()), None)


def recorded_path(path: str | Path, root: Path | None) -> str:
    """How a card records an input path: relative to the repository root when inside it (POSIX, no `..`), else
    absolute as given; the card then names no developer's checkout."""
    resolved = Path(path).expanduser().resolve()
    if root is not None and resolved.is_relative_to(root):
        return resolved.relative_to(root).as_posix()
    return str(path)


def _software() -> dict[str, str]:
    import sklearn

    return {"torch": torch.__version__, "scikit-learn": sklearn.__version__, "python": platform.python_version()}


def summary_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (set, model): overall accuracy, mIoU, pixels, for tables and the CLI."""
    rows = []
    for set_name in SUMMARY_SETS:
        for model, m in metrics.get(set_name, {}).items():
            rows.append({"set": set_name, "model": model, "overall_accuracy": m["overall_accuracy"],
                         "miou": m["miou"], "pixels": m["pixels"]})
    return rows

