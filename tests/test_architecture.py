"""The layering the build enforces, beyond import-linter: no module reaches into another folder's private modules."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from tests.conftest import REPO

PACKAGE_DIRS: dict[str, str] = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]


def _package_of(path: Path) -> str:
    folder = path.parent.relative_to(REPO).as_posix()
    return next(package for package, where in PACKAGE_DIRS.items() if where == folder)


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
    for folder in PACKAGE_DIRS.values():
        for path in sorted((REPO / folder).glob("*.py")):
            own = _package_of(path)
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
    for package, folder in PACKAGE_DIRS.items():
        init = REPO / folder / "__init__.py"
        tree = ast.parse(init.read_text(encoding="utf-8"))
        exported = [node for node in tree.body if isinstance(node, ast.Assign)
                    and any(getattr(t, "id", None) == "__all__" for t in node.targets)]
        assert exported or package == "geovigie", f"{init} has no __all__"


def test_one_privacy_convention_per_package() -> None:
    """A package that exports its names from private modules keeps every module private: a public-named module
    beside `_modules` reads as an API of its own."""
    mixed = []
    for package, folder in PACKAGE_DIRS.items():
        modules = [path.stem for path in (REPO / folder).glob("*.py") if path.stem != "__init__"]
        if package != "geovigie" and any(name.startswith("_") for name in modules):
            mixed += [f"{folder}/{name}.py" for name in modules if not name.startswith("_")]
    assert mixed == [], f"public-named modules beside private ones: {mixed}"
