"""A counting stand-in for the inference workers' chunk task (resume tests of batch and jobs)."""

from __future__ import annotations

from typing import Any

CHUNK_REPORTS: list[bool] = []
"""Whether each chunk task of the resumed pass found its block already in the journal."""


def counted_predict_chunk(*args: Any, **kwargs: Any) -> Any:
    """`predict_chunk`, recording in `CHUNK_REPORTS` whether the chunk was already in the journal."""
    from geovigie.inference import _worker

    report = _worker.predict_chunk(*args, **kwargs)
    CHUNK_REPORTS.append(report.reused)
    return report
