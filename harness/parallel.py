"""Run independent jobs on a few daemon threads and yield their results as they finish.

Why not ``concurrent.futures.ThreadPoolExecutor``: its worker threads are joined when the
``with`` block ends and again at interpreter exit, so a run interrupted by Ctrl-C or SIGTERM
could not exit until every fit in progress had finished (76 s for one census model). These
threads are daemons and stop taking new jobs as soon as the consumer stops iterating, so an
interrupted run exits at once (harness/interrupt.py); a fit still computing in one of them is
abandoned with the process.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_jobs() -> int:
    """The cores this process may run on (``run --jobs``' default).

    The CPU affinity where the OS reports it (a container or ``taskset`` limits it below
    ``os.cpu_count()``), else ``os.cpu_count()``, at least 1.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def imap_unordered(fn: Callable[[T], R], items: Sequence[T], jobs: int) -> Iterator[R]:
    """``fn(item)`` for every item, in the order they finish, on ``jobs`` daemon threads.

    An exception raised by ``fn`` is re-raised here (and no new job is started); so is any
    exception raised while the consumer waits (a signal handler's, in the main thread).
    """
    pending: queue.SimpleQueue[T] = queue.SimpleQueue()
    for item in items:
        pending.put(item)
    finished: queue.SimpleQueue[tuple[bool, object]] = queue.SimpleQueue()
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            try:
                item = pending.get_nowait()
            except queue.Empty:
                return
            try:
                finished.put((True, fn(item)))
            except BaseException as e:  # handed to the consumer, who decides
                finished.put((False, e))

    for i in range(max(1, min(jobs, len(items)))):
        threading.Thread(target=worker, name=f"mlm-harness-job-{i + 1}", daemon=True).start()
    try:
        for _ in range(len(items)):
            ok, value = finished.get()
            if not ok:
                raise value  # type: ignore[misc]
            yield value  # type: ignore[misc]
    finally:
        stop.set()
