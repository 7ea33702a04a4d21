"""What a batch job has done: one JSON file beside its outputs, rewritten atomically after every finished job.

A job is one task on one item. It is done when the state holds it with the same item fingerprint (the item's
`updated`, datetimes and asset hrefs) and the same task signature (options, bundle weights): a changed item or a
changed task runs again; a failed one is retried on the next pass.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pystac

from geovigie.atomic import write_json_atomic
from geovigie.errors import InvalidInputError

STATE_VERSION = 1


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def item_fingerprint(item: pystac.Item) -> str:
    """What changes when an item changes: its `updated`, datetimes and asset hrefs (16 hex digits)."""
    props = item.properties
    parts = {
        "collection": item.collection_id,
        "updated": props.get("updated"),
        "datetime": props.get("datetime"),
        "start": props.get("start_datetime"),
        "end": props.get("end_datetime"),
        "assets": {key: asset.href for key, asset in sorted(item.assets.items())},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def job_key(item: pystac.Item, task: str) -> str:
    """The state key of one task on one item."""
    return f"{item.collection_id or ''}/{item.id}#{task}"


@dataclass
class BatchState:
    """Done and failed jobs of one batch configuration, loaded from and saved to `path`."""

    path: Path
    done: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_success: str | None = None

    @classmethod
    def load(cls, path: str | Path) -> BatchState:
        """The state at `path`, empty when the file does not exist yet.

        Raises:
            InvalidInputError: the file is not a batch state (corrupt or another tool's).
        """
        path = Path(path)
        if not path.exists():
            return cls(path)
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            if payload.get("version") != STATE_VERSION:
                raise ValueError(f"version {payload.get('version')!r}, expected {STATE_VERSION}")
            return cls(path, dict(payload["done"]), dict(payload["failed"]), payload.get("last_success"))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise InvalidInputError(f"{path}: not a readable batch state ({err}); move it away to start afresh "
                                    "(every item is then processed again)") from err

    def status(self, key: str, fingerprint: str, signature: str) -> str:
        """`done`, or why the job must run: `new`, `item changed`, `task changed`, `failed before`."""
        record = self.done.get(key)
        if record is not None:
            if record["fingerprint"] == fingerprint and record["signature"] == signature:
                return "done"
            return "item changed" if record["fingerprint"] != fingerprint else "task changed"
        return "failed before" if key in self.failed else "new"

    def record_done(self, key: str, fingerprint: str, signature: str, **details: Any) -> None:
        """Mark a job done and save at once (a kill afterwards loses nothing)."""
        self.failed.pop(key, None)
        self.done[key] = {"fingerprint": fingerprint, "signature": signature, "at": _now(), **details}
        self.last_success = self.done[key]["at"]
        self.save()

    def record_failure(self, key: str, fingerprint: str, signature: str, error: str) -> None:
        """Keep a job's error (the job is retried next pass) and save at once."""
        self.failed[key] = {"fingerprint": fingerprint, "signature": signature, "at": _now(), "error": error}
        self.save()

    def save(self) -> None:
        """Write the state atomically."""
        write_json_atomic(self.path, {"version": STATE_VERSION, "last_success": self.last_success,
                                      "done": self.done, "failed": self.failed})
