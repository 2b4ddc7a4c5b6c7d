"""Partitions from Parquet or CSV files through Dask, for :mod:`backends.native.partitioned`.

Usage::

    from backends.native.dask_source import lmm_dask
    res = lmm_dask("y ~ x + (1 + x | g)", "data/*.parquet", reml=True)            # local
    res = lmm_dask(formula, "s3-or-nfs/path/*.csv", client=Client("tcp://host:8786"))

Only the formula's columns are read (Parquet reads no others at all). Each partition is turned
into its small summary where it is read -- on a worker of the cluster, or a thread of the local
scheduler -- and only summaries travel back; at most ``in_flight`` partitions are being
processed at once, so peak memory is about ``in_flight`` partitions plus the statistics, however
many rows there are.

Dask (``dask[dataframe]``, and ``distributed`` for a cluster) and pyarrow are an optional extra
(``pip install 'mlm-harness[dask]'``); they are imported only when this module is used.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from pathlib import Path as FilePath
from typing import Any

import pandas as pd

from harness.formula import parse_formula

from .fit import Path
from .partitioned import lmm_partitioned
from .result import LmmResult


def lmm_dask(formula: str, source: Any, reml: bool = True,
             factors: list[str] | tuple[str, ...] = (),
             reference: dict[str, object] | None = None, client: Any = None,
             in_flight: int | None = None, blocksize: str | int = "64MB",
             path: Path = "auto") -> LmmResult:
    """Fit ``formula`` on the data in ``source`` partition by partition.

    ``source`` is a Parquet file, directory or glob (``.parquet``/``.pq``), a CSV file or glob
    (``.csv``; split into ``blocksize`` partitions), a list of such paths, or a Dask DataFrame.
    ``client`` is a ``distributed.Client`` (a local or an existing cluster); without one, Dask's
    local threaded scheduler is used. ``in_flight`` bounds the partitions processed at once
    (default: the cluster's worker threads, or the number of CPUs).
    """
    columns = sorted(parse_formula(formula).variables())
    frame = read_frame(source, columns, blocksize)
    mapper = dask_mapper(frame, client, in_flight)
    return lmm_partitioned(formula, mapper, reml=reml, factors=factors, reference=reference,
                           path=path)


def read_frame(source: Any, columns: list[str], blocksize: str | int = "64MB"):
    """A Dask DataFrame of ``columns`` from Parquet or CSV (or a given Dask DataFrame)."""
    import dask.dataframe as dd

    if isinstance(source, dd.DataFrame):
        missing = [c for c in columns if c not in source.columns]
        if missing:
            raise ValueError(f"column(s) {', '.join(missing)} not in the Dask DataFrame")
        return source[columns]
    paths = [str(p) for p in source] if isinstance(source, (list, tuple)) else [str(source)]
    kind = _format(paths)
    if kind == "parquet":
        return dd.read_parquet(paths if len(paths) > 1 else paths[0], columns=columns)
    return dd.read_csv(paths, usecols=columns, blocksize=blocksize)


def _format(paths: Sequence[str]) -> str:
    kinds = set()
    for p in paths:
        name = p.lower().rstrip("/")
        if name.endswith((".parquet", ".pq")) or FilePath(p).is_dir():
            kinds.add("parquet")
        elif name.endswith((".csv", ".csv.gz", ".txt")):
            kinds.add("csv")
        else:
            raise ValueError(f"cannot tell the format of {p!r}: name Parquet files *.parquet "
                             "(or pass a directory of them) and CSV files *.csv")
    if len(kinds) > 1:
        raise ValueError("mix of Parquet and CSV sources; pass one format")
    return kinds.pop()


def dask_mapper(frame, client: Any = None,
                in_flight: int | None = None) -> Callable[[Callable], Iterator[object]]:
    """``mapper(fn)`` yielding ``fn(partition)`` for every partition of ``frame``, computed by
    Dask with at most ``in_flight`` partitions at once (results in completion order)."""
    import dask

    parts = frame.to_delayed()
    if in_flight is None:
        in_flight = (sum(client.nthreads().values()) if client is not None
                     else os.cpu_count() or 1)
    in_flight = max(1, int(in_flight))

    def run(fn: Callable[[pd.DataFrame], object]) -> Iterator[object]:
        tasks = [dask.delayed(fn)(p) for p in parts]
        if client is None:
            for start in range(0, len(tasks), in_flight):
                yield from dask.compute(*tasks[start:start + in_flight])
            return
        from distributed import as_completed

        pending = iter(tasks)
        running = as_completed([client.compute(t) for t in islice(pending, in_flight)])
        for future in running:
            result = future.result()
            future.release()
            nxt = next(pending, None)
            if nxt is not None:
                running.add(client.compute(nxt))
            yield result
    return run
