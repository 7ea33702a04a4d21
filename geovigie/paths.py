"""Names and paths built from outside values: item, collection and layer ids, file names, request values.

Every name taken from an item, a search, a config or a request passes here before it becomes part of a path:

- `check_name` accepts a name that is already a safe file-name component and refuses anything else (ids the
  project chooses, names a user or a request gives: refusing is the honest answer);
- `safe_name` turns any text (a remote STAC item id, a file's stem) into one: readable ids stay as they are,
  others are cleaned and get a short hash of the original, so two different ids never share a name;
- `safe_join` joins a root with such components and refuses a result that leaves the root (`..`, absolute
  parts, a symlink pointing elsewhere).

Safe means ASCII letters, digits, `_`, `-` and `.`, starting with a letter or digit, not ending with `.`, at most
`NAME_MAX` characters. Case is kept: STAC ids of Sentinel-2 and Landsat scenes are upper case, and lowering them
would rename every existing output.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

from geovigie.errors import InvalidInputError

NAME_MAX = 128
"""Longest name `check_name` accepts (far below the 255 bytes of common file systems, leaving room for suffixes)."""
SAFE_NAME_MAX = 96
"""Longest name `safe_name` makes, its hash suffix included: outputs add suffixes such as `__bundle-v1_classes.tif`."""
HASH_CHARS = 8
"""Hex digits of SHA-256 added to a name that had to be cleaned or cut."""

_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._-]+")
_SHOWN = 40


def printable(value: object, limit: int = 80) -> str:
    """`value` fit for a terminal or a log line: control and non-printable characters escaped (no terminal escape
    sequence from a remote id reaches the screen), cut to `limit` characters with `…`."""
    text = value if isinstance(value, str) else str(value)
    cut = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text[:limit])
    return cut + ("…" if len(text) > limit else "")


def shown(value: object, limit: int = _SHOWN) -> str:
    """`printable(value, limit)` quoted, for messages that name a value."""
    return repr(printable(value, limit))


def is_safe_name(value: object, limit: int = NAME_MAX) -> bool:
    """Whether `value` is a safe file-name component already (see the module's docstring)."""
    return (isinstance(value, str) and 0 < len(value) <= limit and _SAFE.fullmatch(value) is not None
            and not value.endswith("."))


def check_name(value: object, what: str = "name", limit: int = NAME_MAX) -> str:
    """`value` when it is a safe file-name component.

    Raises:
        InvalidInputError: empty, too long, `.`/`..`, a path separator, a control or non-ASCII character, a
            leading `.`, `-` or `_`: naming `what` and the value (escaped and cut).
    """
    if not is_safe_name(value, limit):
        raise InvalidInputError(f"invalid {what} {shown(value)}: use 1-{limit} ASCII letters, digits, '_', '-' or "
                                "'.', starting with a letter or digit")
    return str(value)


def safe_name(value: object, what: str = "name", limit: int = SAFE_NAME_MAX) -> str:
    """A safe file-name component for any text: `value` itself when it is one and fits `limit`, else its readable
    part (accents dropped, other characters replaced by `_`; `name` when no letter has an ASCII form) cut to fit,
    plus `-` and 8 hex digits of the SHA-256 of `value`, so that two different values never give the same name.

    Raises:
        InvalidInputError: `value` is not text, is empty, `.`, `..`, or holds no letter or digit at all.
    """
    if not isinstance(value, str) or value.strip() in ("", ".", ".."):
        raise InvalidInputError(f"invalid {what} {shown(value)}: empty, '.' or '..'")
    if is_safe_name(value, limit):
        return value
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    readable = _UNSAFE_RUN.sub("_", ascii_text).strip("._-")
    if not any(c.isalnum() for c in value):
        raise InvalidInputError(f"invalid {what} {shown(value)}: no letter or digit to name a file by")
    readable = readable or "name"  # letters with no ASCII form (景色, Ωμέγα): the hash tells them apart
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]
    return f"{readable[: limit - HASH_CHARS - 1].rstrip('._-')}-{digest}"


def safe_join(root: str | Path, *parts: str, what: str = "path") -> Path:
    """`root / part / ...` once every part is a safe component (`check_name`, up to 255 characters: suffixed names
    such as `<id>__<bundle>_classes.tif` are components too) and the result, symlinks resolved, stays under root.

    Nothing is created; `root` need not exist yet.

    Raises:
        InvalidInputError: a part is not a safe component, or the path leads outside `root` (through a symlink).
    """
    for part in parts:
        check_name(part, what, limit=255)
    target = Path(root).joinpath(*parts)
    base = Path(root).resolve()
    if not target.resolve().is_relative_to(base):
        raise InvalidInputError(f"{what} {shown(str(target), 80)} leads outside {base} (a symbolic link?); refused")
    return target
