"""Rich progress bars that can be turned off (tests, services) or reported elsewhere (the jobs API); drawn on a
terminal only (a log gets no bar)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

ProgressHook = Callable[[int, int], None]
"""Called with (done, total) as work advances (e.g. tiles of an inference run), in place of a drawn bar."""
Progress = bool | ProgressHook
"""Draw a bar (True), nothing (False), or report to a hook."""


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def progress_bar(description: str, total: int, enabled: Progress = True) -> Iterator[Callable[[int], None]]:
    """Yield `advance(n)`; draws a rich progress bar on stderr when `enabled` is True and stderr is a terminal,
    calls it with (done, total) when it is a hook (once at the start, then on every advance)."""
    if callable(enabled):
        hook, done = enabled, 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            hook(done, total)

        hook(0, total)
        yield advance
        return
    if not enabled or not _is_terminal(sys.stderr):
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        transient=False
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
