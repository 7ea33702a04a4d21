"""The layering the build enforces, beyond import-linter: no module reaches into another folder's private modules."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
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


def test_one_privacy_convention_per_package() -> None:
    """A package that exports its names from private modules keeps every module private: a public-named module
    beside `_modules` reads as an API of its own."""
    mixed = []
    for package, folder in PACKAGES.items():
        modules = [path.stem for path in folder.glob("*.py") if path.stem != "__init__"]
        if package != "geovigie" and any(name.startswith("_") for name in modules):
            mixed += [f"{folder.relative_to(REPO)}/{name}.py" for name in modules if not name.startswith("_")]
    assert mixed == [], f"public-named modules beside private ones: {mixed}"


def _distribution(requirement: str) -> str:
    name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _third_party_imports(folders: list[Path]) -> dict[str, set[str]]:
    """Top-level module -> files importing it, for every module neither stdlib nor geovigie."""
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in folder.rglob("*.py"):
            for name in _imports(path):
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("geovigie", "tests", "__future__"):
                    found.setdefault(top, set()).add(path.relative_to(REPO).as_posix())
    return found


def test_every_import_is_declared() -> None:
    """Each third-party module the packages import comes from a distribution pyproject.toml names (a transitive
    dependency may vanish with its parent's next release); extras (gpu, planetary-computer) count for the optional
    imports, dev tools do not."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {_distribution(r) for r in project["dependencies"]}
    declared |= {_distribution(r) for extra, reqs in project["optional-dependencies"].items() if extra != "dev"
                 for r in reqs}
    owners = packages_distributions()
    undeclared = {module: sorted(files) for module, files in
                  _third_party_imports([REPO / folder for folder in PACKAGE_DIRS.values()]).items()
                  if not {_distribution(d) for d in owners.get(module, [module])} & declared}
    assert undeclared == {}, f"imported but not declared in [project.dependencies]: {undeclared}"
