"""The layering the build enforces, beyond import-linter: no module reaches into another folder's private modules."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from tests.conftest import REPO

PACKAGE_DIRS: dict[str, str] = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]


def _packages() -> dict[str, Path]:
    """Every package of the distribution and its folder: pyproject's package-dir, and the folders with an
    `__init__.py` below them (`geovigie.catalog.stac` in `catalog/stac`)."""
    found = {}
    for package, folder in PACKAGE_DIRS.items():
        found[package] = REPO / folder
        if package != "geovigie":
            for init in sorted((REPO / folder).rglob("__init__.py")):
                parts = init.parent.relative_to(REPO / folder).parts
                if parts:
                    found[".".join((package, *parts))] = init.parent
    return found


PACKAGES = _packages()


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def test_no_module_imports_another_folders_private_modules() -> None:
    offences = []
    for own, folder in PACKAGES.items():
        for path in sorted(folder.glob("*.py")):
            for name in _imports(path):
                parts = name.split(".")
                if parts[0] != "geovigie":
                    continue
                private = next((i for i, part in enumerate(parts) if part.startswith("_")), None)
                if private is None:
                    continue
                owner = ".".join(parts[:private])
                if owner != own:
                    offences.append(f"{path.relative_to(REPO)} imports {name}")
    assert offences == [], "\n".join(offences)


def test_every_subpackage_declares_its_public_names() -> None:
    assert "geovigie.catalog.stac" in PACKAGES  # subpackages are checked too
    for package, folder in PACKAGES.items():
        init = folder / "__init__.py"
        tree = ast.parse(init.read_text(encoding="utf-8"))
        exported = [node for node in tree.body if isinstance(node, ast.Assign)
                    and any(getattr(t, "id", None) == "__all__" for t in node.targets)]
        assert exported or package == "geovigie", f"{init} has no __all__"
