"""benchmarks/cli.py measures whole processes: a child's CPU is counted, a failure is no result,
and the measured section of the docs is replaced in place."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from benchmarks.cli import END, START, run_once, write_section


def test_run_once_counts_the_child_cpu_and_rejects_a_failed_command() -> None:
    busy = [sys.executable, "-c", "import time\nt = time.process_time()\n"
            "while time.process_time() - t < 0.3: pass"]
    timing = run_once(busy, dict(os.environ))
    assert timing.cpu_s >= 0.3 and timing.wall_s >= timing.cpu_s * 0.5
    with pytest.raises(RuntimeError, match="exited 3"):
        run_once([sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ))


def test_write_section_replaces_only_the_measured_part(tmp_path: Path) -> None:
    doc = tmp_path / "b.md"
    doc.write_text(f"# Title\n\nintro\n\n{START}\nold\n{END}\n\nafter\n")
    write_section(doc, f"{START}\nnew\n{END}\n")
    assert doc.read_text() == f"# Title\n\nintro\n\n{START}\nnew\n{END}\n\nafter\n"
    fresh = tmp_path / "c.md"
    write_section(fresh, f"{START}\nx\n{END}\n")
    assert fresh.read_text() == f"{START}\nx\n{END}\n"
