"""What every benchmark records with its numbers: the machine, the load, and where they go.

The machine is shared (2 cores, other jobs), so a benchmark's numbers mean little without the
load average next to them; ratios measured side by side in one run are what the targets are
judged on. Sections of a markdown file are written between a benchmark's own markers, so
several benchmarks (and hand-written notes) share ``docs/benchmarks.md``.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as text."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> dict[str, str]:
    """CPU, cores, platform and the numerical libraries' versions."""
    import nlopt
    import numpy as np
    import scipy

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": str(os.cpu_count()), "platform": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "nlopt": nlopt.__version__}


def replace_section(path: Path, start: str, end: str, section: str) -> None:
    """Write ``section`` (which begins with ``start`` and ends with ``end``) into ``path`` in
    place of the text between the markers, keeping everything else; appended if absent."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
