"""A memory budget for data preparation, checked before anything large is allocated.

A spec can ask for a lot of memory in a few characters: ``replicate: {times: 1000}`` on the
63,388-row census file is 7.6 GiB of copies before a single model is fitted, and each derived
variable adds a column to every row. Data preparation therefore estimates what each step will
allocate (:func:`frame_bytes` and the step's own arithmetic) and calls :func:`check` first,
which stops with an error naming the spec key and both numbers when the estimate is over the
budget, instead of letting the machine run out of memory half-way.

The budget is ``$MLM_HARNESS_MEMORY_LIMIT`` (bytes, or with a unit: ``512M``, ``8G``, ``1.5GiB``)
or, by default, half the machine's physical memory but at most :data:`DEFAULT_CAP` (4 GiB), so
a suite run leaves room for the R workers that fit the prepared data. The course suite needs at
most about 300 MB (the optional 4-million-row GCSE refits).
"""

from __future__ import annotations

import os
import re

import pandas as pd

ENV_VAR = "MLM_HARNESS_MEMORY_LIMIT"
DEFAULT_CAP = 4 << 30
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


class MemoryBudgetError(ValueError):
    """A preparation step would allocate more than the budget; the message says which and how
    to proceed."""


def parse_size(text: str) -> int:
    """``"512M"`` -> 536870912; units K, M, G, T are powers of 1024 (``GB`` and ``GiB`` alike)."""
    m = _SIZE.match(text)
    if not m:
        raise MemoryBudgetError(f"${ENV_VAR}={text!r} is not a size; write bytes or a number "
                                "with a unit, e.g. 8G or 512M")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def physical_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # not POSIX, or not reported
        return None


def budget() -> int:
    """The budget in bytes: ``$MLM_HARNESS_MEMORY_LIMIT``, else min(physical / 2, 4 GiB)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return parse_size(env)
    phys = physical_memory()
    return min(DEFAULT_CAP, phys // 2) if phys else DEFAULT_CAP


def frame_bytes(frame: pd.DataFrame) -> int:
    """Bytes a frame holds, text included (what a copy of it costs)."""
    return int(frame.memory_usage(index=True, deep=True).sum())


def format_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def check(estimate: int, what: str, key: str) -> None:
    """Raise :class:`MemoryBudgetError` when ``estimate`` bytes exceed the budget.

    ``what`` says what would be allocated, ``key`` is the spec key that asks for it.
    """
    limit = budget()
    if estimate > limit:
        raise MemoryBudgetError(
            f"{key}: {what} needs about {format_bytes(estimate)}, more than the memory budget "
            f"of {format_bytes(limit)}; lower it in the spec, or raise the budget with "
            f"{ENV_VAR}=<size> (e.g. {ENV_VAR}=16G) if the machine has the memory")
