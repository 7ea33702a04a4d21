"""Strict TOML configuration files: one reader, and one way to word what pydantic found wrong in them.

Used by the settings (`geovigie.toml`), batch jobs, training experiments and ZAN mappings: a missing file, a file
that is not UTF-8 TOML and every invalid key are said the same way, each problem naming its key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from geovigie.errors import GeovigieError, InputNotFoundError, InvalidInputError

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound="BaseModel")


def read_toml(path: str | Path, what: str = "config",
              error: type[GeovigieError] = InvalidInputError) -> dict[str, Any]:
    """The table of a TOML file.

    Raises:
        InputNotFoundError: no such file (`what` names it: "batch config", "experiment config"...).
        error: (InvalidInputError by default) not UTF-8 text, or not valid TOML (with the line and column).
    """
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"{what} not found: {path}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise error(f"{path}: not valid TOML ({err})") from err


def describe_errors(error: ValidationError | Sequence[Mapping[str, Any]], root: str = "config",
                    env_prefix: str | None = None) -> str:
    """Every problem pydantic found, one clause each, naming the key: `unknown key 'x' (...)`, `missing key 'x'`,
    or `x.y: what is wrong` (`root` names the whole file's problems). With `env_prefix` (settings), a top-level key
    also names its environment variable: `http_timeout (GEOVIGIE_HTTP_TIMEOUT): ...`. `error` may also be the
    list of problems itself (FastAPI's `RequestValidationError.errors()`)."""
    parts = []
    problems = error if isinstance(error, Sequence) else error.errors(include_url=False)
    for problem in problems:
        where = ".".join(str(part) for part in problem["loc"]) or root
        if problem["type"] == "extra_forbidden":
            parts.append(f"unknown key {where!r} (remove it or check its spelling)")
        elif problem["type"] == "missing":
            parts.append(f"missing key {where!r}")
        else:
            if env_prefix and len(problem["loc"]) == 1:
                where = f"{where} ({env_prefix}{where.upper()})"
            parts.append(f"{where}: {problem['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def validate(model: type[Model], data: dict[str, Any], source: str | Path,
             error: type[GeovigieError] = InvalidInputError) -> Model:
    """`data` checked as `model`.

    Raises:
        error: (InvalidInputError by default) `source: ` and every problem (`describe_errors`).
    """
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise error(f"{source}: {describe_errors(err)}") from None
