"""Reuse fits: identical models within a run are fitted once, and finished fits are kept on disk.

Some course models take lme4 minutes (ordinal and random-slope logit models on the 63,388-row
census file), and several specs fit the same model in one backend (the census random-slope logit
at 2, 7 and 20 quadrature points is one Laplace fit in lme4). A fit is identified by everything
that determines its numbers: the backend, the backend's software versions, a hash of the
backend's own source code, the model as that backend fits it, the data file's SHA-256 and the
data preparation (derived variables, subset, replication, column types). The spec id is not part
of the key, so a reused fit is relabelled with the spec that asked for it and says so.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from functools import cache
from pathlib import Path

from backends.base import get_backend
from harness import __version__
from harness.results import FitResult
from harness.spec import Spec

_PROJECT = Path(__file__).resolve().parents[1]


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlm-harness" / "fits"


@cache
def _source_hash(backend: str) -> str:
    """Hash of the backend's code and of the shared data preparation code."""
    h = hashlib.sha256()
    files = sorted((_PROJECT / "backends" / backend).rglob("*.py"))
    files += sorted((_PROJECT / "backends" / backend).rglob("*.R"))
    files += [_PROJECT / "harness" / name for name in ("derive.py", "datasets.py", "runner.py")]
    for f in files:
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def fit_key(spec: Spec, backend: str, data_sha256: str | None) -> str:
    settings = spec.backends.get(backend)  # type: ignore[call-overload]
    payload = {
        "harness": __version__,
        "backend": backend,
        "versions": list(get_backend(backend).availability().versions),
        "source": _source_hash(backend),
        "model": spec.model_for(backend).model_dump(mode="json"),
        "options": settings.options if settings else {},
        "dataset": spec.dataset,
        "data_sha256": data_sha256,
        "derive": [d.model_dump(mode="json") for d in spec.derive],
        "subset": spec.subset,
        "replicate": spec.replicate.model_dump(mode="json") if spec.replicate else None,
        "columns": spec.columns,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def relabel(result: FitResult, spec_id: str, origin: str) -> FitResult:
    """A copy of a reused fit under ``spec_id``, saying where it came from."""
    out = copy.deepcopy(result)
    if out.spec_id != spec_id:
        out.diagnostics.messages.append(f"the same fit as spec {out.spec_id} ({origin})")
    elif origin == "fit cache":
        out.diagnostics.messages.append("reused from the fit cache (run with --no-cache to refit)")
    out.spec_id = spec_id
    return out


class FitCache:
    """Finished ``ok`` fits on disk, one JSON file per key. Failures are never cached."""

    def __init__(self, folder: Path):
        self.folder = folder

    def get(self, key: str) -> FitResult | None:
        path = self.folder / f"{key}.json"
        if not path.exists():
            return None
        try:
            return FitResult.from_json(path.read_text())
        except (ValueError, KeyError, TypeError):
            return None  # an unreadable entry is refitted and overwritten

    def put(self, key: str, result: FitResult) -> None:
        if result.status != "ok":
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(result.to_json())
        tmp.replace(self.folder / f"{key}.json")
