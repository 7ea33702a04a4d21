"""Every user notebook runs top to bottom on the shipped data (executed with nbclient, outputs discarded)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tests.conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_notebooks_exist() -> None:
    assert len(NOTEBOOKS) >= 1


def test_notebooks_are_stored_without_outputs() -> None:
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        assert all(not cell.get("outputs") for cell in book.cells if cell.cell_type == "code"), path.name


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    from nbclient import NotebookClient

    book = nbformat.read(path, as_version=4)
    NotebookClient(book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [output for cell in book.cells for output in cell.get("outputs", []) if output.output_type == "error"]
    assert errors == []
