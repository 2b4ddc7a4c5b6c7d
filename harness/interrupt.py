"""SIGINT and SIGTERM as one exception, so an interrupted run stops cleanly and says so.

Without this, Ctrl-C during a suite run waited for every fit in progress (76 s for one census
model in R) and ended in a traceback, and SIGTERM (a CI timeout, ``kill``) ended the harness at
once while its R worker kept computing. Within :func:`signals_raise` both signals raise
:class:`Interrupted` in the main thread; the CLI then stops the backends' worker processes
(``backends.base.interrupt_all``), removes the half-written report (harness/report_folder.py)
and exits with the shell's convention, 128 + the signal number: 130 for SIGINT, 143 for SIGTERM.

Fits run in daemon threads (:func:`harness.runner.fit_all`), so the process can exit while a
native fit is still computing in one of them instead of waiting for it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The run was interrupted by a signal (a BaseException, like KeyboardInterrupt, so that no
    ``except Exception`` on the way up swallows it)."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(self.signal_name)

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@contextmanager
def signals_raise() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted` (main thread only).

    After the first signal both are ignored until the block ends, so a second Ctrl-C cannot
    interrupt the clean-up of the first.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}

    def handler(signum: int, _frame: object) -> None:
        for s in SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    for s in SIGNALS:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
