"""Run the fit with single-threaded OpenBLAS, restoring the previous thread counts afterwards.

Why: numpy and scipy wheels each bundle their own OpenBLAS. When both run threaded, the idle
threads of one spin while the other works, and on a 2-core machine a 1,156 x 1,156 Cholesky
(InstEval's dense block) took 0.3 s instead of 0.02 s single-threaded. The matrices in a mixed
model fit are small enough that threads buy nothing, so the fit pins both libraries to one
thread. Linux only (it finds the loaded libraries in /proc/self/maps); elsewhere, or if the
symbols are missing, it does nothing.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_", "openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
            "openblas_get_num_threads64_", "openblas_get_num_threads")


@cache
def _libraries() -> tuple[tuple[object, object], ...]:
    """(getter, setter) pairs of every OpenBLAS loaded in this process."""
    try:
        with open("/proc/self/maps") as fh:
            paths = sorted({last for last in (line.split()[-1] for line in fh if line.strip())
                            if "openblas" in last.lower() and ".so" in last})
    except OSError:
        return ()
    found = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        get = next((getattr(lib, n) for n in _GETTERS if hasattr(lib, n)), None)
        put = next((getattr(lib, n) for n in _SETTERS if hasattr(lib, n)), None)
        if get is not None and put is not None:
            get.restype = ctypes.c_int
            put.argtypes = [ctypes.c_int]
            found.append((get, put))
    return tuple(found)


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    import numpy  # noqa: F401  (make sure both libraries are loaded before looking)
    import scipy.linalg  # noqa: F401

    libs = _libraries()
    before = []
    try:
        for get, put in libs:
            before.append((put, get()))
            put(1)
        yield
    finally:
        for put, n in before:
            put(n)
