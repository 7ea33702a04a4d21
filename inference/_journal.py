"""The blocks a run's workers finish, kept on disk until the COGs are made: the journal a crashed run resumes from.

One folder per output and run (`<out>/.geovigie-partial/<stem>.<key>/`, the key hashing the run signature and the
chunk plan) holds one file per chunk (`chunk-NNNNN.npz`: its finished block and the weighted logit sums of the seams
it shares) and one per seam cell (`seam-<col>-<row>.npy`: the finished seam). Each is written atomically, so a file
present is work done: a rerun after a crash or a kill skips it, a worker given a task whose file exists does
nothing, and a lost worker's half-written file never counts. The folder goes once the COGs are published.

Workers write here directly, so on a cluster the output folder must be one that every worker and the client see
(a shared file system, as for the inputs). Until the COGs are published the journal takes about the disk of the
uncompressed outputs (1 + classes bytes a pixel) plus the float32 seams.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geovigie.atomic import atomic_path, sweep_scratch
from geovigie.errors import InvalidInputError
from geovigie.inference._chunks import Window4

PARTIAL_FOLDER = ".geovigie-partial"
"""Hidden folder, inside the output folder, of the runs in progress."""


def _window_name(window: Window4) -> str:
    return f"{window[0]}-{window[1]}"


@dataclass(frozen=True)
class RunJournal:
    """A run's block files: where each chunk and seam cell goes, and which are done."""

    path: Path

    def chunk(self, index: int) -> Path:
        """The file of chunk `index`: `block` (1 + classes, h, w) uint8 and `<col>-<row>_{logits,weights,valid}`."""
        return self.path / f"chunk-{index:05d}.npz"

    def seam(self, window: Window4) -> Path:
        """The finished seam cell at `window`: (1 + classes, h, w) uint8, class band first."""
        return self.path / f"seam-{_window_name(window)}.npy"

    def done_chunks(self) -> set[int]:
        """Indices of the chunks whose file exists."""
        return {int(p.stem.split("-")[1]) for p in self.path.glob("chunk-*.npz")}

    def write_chunk(self, index: int, block: np.ndarray, seams: dict[Window4, tuple[np.ndarray, ...]]) -> Path:
        """Save a chunk's finished block and its seams' (logit sum, weight sum, validity), atomically."""
        arrays: dict[str, Any] = {"block": block}
        for window, (logits, weights, valid) in seams.items():
            name = _window_name(window)
            arrays |= {f"{name}_logits": logits, f"{name}_weights": weights, f"{name}_valid": valid}
        target = self.chunk(index)
        with atomic_path(target) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        return target

    def read_block(self, index: int) -> np.ndarray:
        """Chunk `index`'s finished block."""
        return self._load(self.chunk(index), "block")[0]

    def read_seam_part(self, index: int, window: Window4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Chunk `index`'s (logit sum, weight sum, validity) over the seam cell at `window`."""
        name = _window_name(window)
        logits, weights, valid = self._load(self.chunk(index), f"{name}_logits", f"{name}_weights", f"{name}_valid")
        return logits, weights, valid

    def _load(self, path: Path, *keys: str) -> list[np.ndarray]:
        """Arrays of a journal file.

        Raises:
            FileNotFoundError: no such file (never written, or written where this machine does not see).
            InvalidInputError: the file is damaged (it was renamed into place whole, so something else broke it).
        """
        try:
            if not keys:
                return [np.load(path, allow_pickle=False)]
            with np.load(path, allow_pickle=False) as saved:
                return [saved[key] for key in keys]
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
            raise InvalidInputError(f"{path}: unreadable journal file ({err}); delete {self.path} to predict this "
                                    "output afresh") from err

    def write_seam(self, window: Window4, block: np.ndarray) -> Path:
        """Save a finished seam cell, atomically."""
        target = self.seam(window)
        with atomic_path(target) as tmp, open(tmp, "wb") as handle:
            np.save(handle, block)
        return target

    def read_seam(self, window: Window4) -> np.ndarray:
        """A finished seam cell."""
        return self._load(self.seam(window))[0]

    def remove(self) -> None:
        """Delete the folder (the outputs are published), and the partial folder when nothing else is in it."""
        shutil.rmtree(self.path, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()


def open_journal(out_dir: Path, stem: str, signature: str, plan: str) -> RunJournal:
    """The journal of output `stem` for this run signature and chunk plan, created when missing; the journals of
    other runs of the same output (another input, bundle or tiling: their blocks can never be used) are removed,
    and so are the temporary files killed writers left in this one."""
    key = hashlib.sha256(f"{signature}|{plan}".encode()).hexdigest()[:16]
    root = out_dir / PARTIAL_FOLDER
    if root.is_dir():
        for stale in root.iterdir():  # not a glob: ids may hold [ ] * ?
            if stale.name.startswith(f"{stem}.") and stale.name != f"{stem}.{key}":
                shutil.rmtree(stale, ignore_errors=True)
    journal = RunJournal(root / f"{stem}.{key}")
    journal.path.mkdir(parents=True, exist_ok=True)
    sweep_scratch(journal.path)
    return journal
