"""SIGTERM handled like Ctrl-C, so that `finally` blocks and `atomic_path` clean-ups run before the process ends.

A first SIGTERM raises `Terminated` (a `KeyboardInterrupt`) in the main thread; a second one, while cleaning up,
ends the process at once (the default action), as a second Ctrl-C does in most tools.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM (or SIGHUP) and is unwinding; `signum` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell convention: 128 + the signal number."""
        return 128 + self.signum


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    signal.signal(signum, signal.SIG_DFL)  # a second signal ends the process without clean-up
    raise Terminated(signum)


@contextlib.contextmanager
def terminate_as_interrupt(signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGHUP)) -> Iterator[None]:
    """While the block runs, `signals` raise `Terminated` in the main thread; outside it, they act as before.

    Signals ignored on entry (e.g. SIGHUP under `nohup`) stay ignored. A no-op outside the main thread (Python
    delivers signals to the main thread only).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in signals if signal.getsignal(s) is not signal.SIG_IGN}
    for signum in previous:
        signal.signal(signum, _raise_terminated)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
