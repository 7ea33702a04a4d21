"""Run mypy and the import-linter layer contract over the installed package layout.

geovigie maps each top-level folder to a `geovigie.*` subpackage (`[tool.setuptools.package-dir]`); both tools
walk a package's directory, so this script builds the package tree as symlinks in a temporary folder first.

Usage: python tools/check_package.py [mypy|imports|all]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def link_tree(target: Path) -> Path:
    """Symlink every `geovigie.*` package folder of pyproject's package-dir into `target/geovigie/...`."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    mapping: dict[str, str] = config["tool"]["setuptools"]["package-dir"]
    root = target / "geovigie"
    root.mkdir(parents=True)
    for entry in (REPO / mapping["geovigie"]).iterdir():
        if entry.suffix in (".py", ".typed"):
            (root / entry.name).symlink_to(entry)
    for package, folder in mapping.items():
        if package != "geovigie":
            (target / package.replace(".", "/")).symlink_to(REPO / folder, target_is_directory=True)
    return target


def main(what: str) -> int:
    """Run the checks; return the worst exit code."""
    with tempfile.TemporaryDirectory(prefix="geovigie-tree-") as tmp:
        tree = link_tree(Path(tmp))
        env = {**os.environ, "PYTHONPATH": str(tree), "MYPYPATH": str(tree)}
        bin_dir = Path(sys.executable).parent
        codes = []
        if what in ("mypy", "all"):
            codes.append(subprocess.call([str(bin_dir / "mypy"), "--config-file", str(REPO / "pyproject.toml"),
                                          "--cache-dir", str(Path(tmp) / ".mypy_cache"), "-p", "geovigie"],
                                         cwd=tree, env=env))
        if what in ("imports", "all"):
            codes.append(subprocess.call([str(bin_dir / "lint-imports"), "--config", str(REPO / "pyproject.toml"),
                                          "--no-cache"], cwd=tree, env=env))
        return max(codes, default=0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "all"))
