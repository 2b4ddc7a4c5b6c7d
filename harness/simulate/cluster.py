"""Dask: a local cluster with no set-up, or an existing scheduler; R workers closed cleanly.

* :func:`connect` starts a ``LocalCluster`` on this machine (one single-threaded worker process
  per core by default, bound to 127.0.0.1, its HTTP endpoint on a free loopback port),
  or connects to ``--scheduler
  ADDRESS`` — a scheduler started by hand (``dask scheduler`` / ``dask worker``), by
  dask-jobqueue on an HPC batch system or by dask-kubernetes (docs/simulate.md). Every worker
  needs this project installed (``pip install -e .[simulate]``) and, for lme4, R.
* Each Dask worker process keeps its own lme4 worker: the R pool of :mod:`backends.lme4.client`
  gives every calling thread one R process, started on its first lme4 fit and reused for every
  later one. :class:`CloseRWorkers` stops those R processes when the Dask worker shuts down
  (an R worker also exits by itself when its parent dies: its stdin closes).
* Dask's nanny starts workers with one BLAS/OpenMP thread (its ``pre-spawn-environ``
  default), as the harness wants for reproducible last digits.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

CONNECT_TIMEOUT_S = 30
MISSING = ("mlm-harness simulate needs dask[distributed] and pyarrow: "
           "pip install -e '.[simulate]' (scripts/bootstrap.sh installs them)")


def require_dask() -> None:
    """Raise ImportError with the fix when Dask or pyarrow is missing."""
    try:
        import distributed  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError as e:
        raise ImportError(f"{MISSING} ({e})") from None


class CloseRWorkers:
    """A Dask worker plugin: stop this worker process's R workers when the worker closes."""

    name = "mlm-harness-close-r-workers"

    def setup(self, worker: Any) -> None:  # noqa: D401 - the WorkerPlugin interface
        pass

    def teardown(self, worker: Any) -> None:
        from backends.lme4.client import POOL

        POOL.close()


def _plugin() -> Any:
    from distributed.diagnostics.plugin import WorkerPlugin

    class _Close(CloseRWorkers, WorkerPlugin):
        pass

    return _Close()


@contextlib.contextmanager
def connect(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: to ``scheduler``, or to a new local cluster of ``workers``."""
    require_dask()
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, ValueError) as e:  # unreachable, or not an address
            raise ConnectionError(f"cannot reach the Dask scheduler {scheduler!r}: {e} (start "
                                  "one with `dask scheduler`, see docs/simulate.md)") from None
        with client:
            client.register_plugin(_plugin())
            yield client
        return
    n = workers or os.cpu_count() or 1
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        client.register_plugin(_plugin())
        yield client


def worker_memory(client: Any) -> dict[str, int]:
    """Resident memory of each Dask worker process plus its children (the R workers), bytes."""

    def measure() -> int:
        import psutil

        me = psutil.Process()
        total = me.memory_info().rss
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return total

    return client.run(measure)


def fits_on_cluster(scheduler: str, items: list[tuple[str, Any, str, Any]]
                    ) -> Iterator[tuple[str, Any]]:
    """``mlm-harness run --scheduler``: run ``fit_one(spec, backend, data)`` for each
    ``(key, spec, backend, data)`` on the cluster, yielding ``(key, result)`` as they finish.

    Each distinct prepared data set is sent to the cluster once (``scatter``), not with every
    fit.
    """
    from distributed import as_completed

    from harness.runner import fit_one

    with connect(scheduler) as client:
        sent: dict[int, Any] = {}
        futures = {}
        for key, spec, backend, data in items:
            if id(data) not in sent:
                sent[id(data)] = client.scatter(data)
            futures[client.submit(fit_one, spec, backend, sent[id(data)], pure=False)] = key
        for future in as_completed(futures):
            yield futures[future], future.result()
