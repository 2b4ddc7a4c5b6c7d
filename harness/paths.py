"""Per-user folders of mlm-harness, computed without importing anything heavy.

The command line shows these defaults in ``--help``, which must stay fast (harness/cli.py).
"""

from __future__ import annotations

import os
from pathlib import Path


def user_cache() -> Path:
    """``$XDG_CACHE_HOME/mlm-harness`` (``~/.cache/mlm-harness``): fits and datasets live below."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlm-harness"


def default_cache_dir() -> Path:
    """Where finished fits are kept between runs (harness/fitcache.py)."""
    return user_cache() / "fits"
