"""Reuse fits: identical models within a run are fitted once, and finished fits are kept on disk.

Some course models take lme4 minutes (ordinal and random-slope logit models on the 63,388-row
census file), and several specs fit the same model in one backend (the census random-slope logit
at 2, 7 and 20 quadrature points is one Laplace fit in lme4). A fit is identified by everything
that determines its numbers: the backend, the backend's software versions, a hash of the whole
installed source (every .py/.R/.yaml under harness/ and backends/, and data/registry.yaml), the
result schema version, the model as that backend fits it, the data file's SHA-256 and the data
preparation (derived variables, subset, replication, column types). An entry is checked when it
is read (see :class:`FitCache`) and refitted if anything about it is off. The spec id is not part
of the key, so a reused fit is relabelled with the spec that asked for it and says so.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
from functools import cache
from pathlib import Path
from typing import Any

from backends.base import get_backend
from harness import __version__
from harness.paths import default_cache_dir  # noqa: F401  (re-exported)
from harness.results import SCHEMA_VERSION, FitResult, result_problems
from harness.spec import Spec

_PROJECT = Path(__file__).resolve().parents[1]
CACHE_FORMAT = 2  # of the entry files; 1 stored the bare result with no checksum
#: what the key hashes: all the code and data description that can change a fit's numbers
SOURCE_GLOBS = ("harness/**/*.py", "harness/**/*.R", "harness/**/*.yaml",
                "backends/**/*.py", "backends/**/*.R", "backends/**/*.yaml", "data/registry.yaml")


@cache
def source_hash(root: Path = _PROJECT) -> str:
    """Hash of every source file that can change a result (:data:`SOURCE_GLOBS`), by path.

    The whole installed source, not one backend's folder: a fit's numbers also depend on the
    shared code (the design matrix, data preparation, the result format), and a cache that
    missed a change there served stale numbers. Hashing it takes a few milliseconds, once.
    """
    h = hashlib.sha256()
    files = sorted({f for pattern in SOURCE_GLOBS for f in root.glob(pattern) if f.is_file()})
    for f in files:
        rel = f.relative_to(root).as_posix().encode()
        data = f.read_bytes()
        h.update(len(rel).to_bytes(4, "big") + rel + len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


def fit_key(spec: Spec, backend: str, data_sha256: str | None) -> str:
    settings = spec.backends.get(backend)
    payload = {
        "harness": __version__,
        "cache_format": CACHE_FORMAT,
        "result_schema": SCHEMA_VERSION,
        "backend": backend,
        "versions": list(get_backend(backend).availability().versions),
        "source": source_hash(),
        "model": spec.model_for(backend).model_dump(mode="json"),
        # the options the spec states, as plain JSON (harness/options.py): an option left unset
        # and no options at all are one fit (a bridge's NativeSettings() is the spec's own fit);
        # glmmtmb's settings have no options
        "options": settings.options.model_dump(mode="json", exclude_none=True)
        if getattr(settings, "options", None) is not None else {},
        "dataset": spec.dataset,
        "data_sha256": data_sha256,
        "derive": [d.model_dump(mode="json") for d in spec.derive],
        "subset": spec.subset,
        "replicate": spec.replicate.model_dump(mode="json") if spec.replicate else None,
        "columns": {c: t.model_dump(mode="json", exclude_none=True)
                    for c, t in spec.columns.items()},
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


def _checksum(result: dict[str, Any]) -> str:
    text = json.dumps(result, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


class FitCache:
    """Finished ``ok`` fits on disk, one JSON file per key. Failures are never cached.

    An entry is ``{"cache_format", "key", "schema_version", "sha256", "result"}``, where
    ``sha256`` is the checksum of the result written at :meth:`put`. :meth:`get` uses an entry
    only if all of it checks out (format, key, schema version, checksum, and the result itself:
    :func:`harness.results.result_problems`); anything else (a truncated file, an edited number,
    an entry holding only ``spec_id`` and ``backend``) is refitted and overwritten, and why is
    kept in :attr:`rejected`.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.rejected: dict[str, str] = {}

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, key: str) -> FitResult | None:
        path = self._path(key)
        if not path.exists():
            return None
        problem = self._problem(path, key)
        if problem:
            self.rejected[key] = problem
            return None
        return FitResult.from_dict(json.loads(path.read_text())["result"])

    def _problem(self, path: Path, key: str) -> str | None:
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            return f"unreadable ({e})"
        if not isinstance(entry, dict):
            return "not a cache entry"
        if entry.get("cache_format") != CACHE_FORMAT:
            return f"cache format {entry.get('cache_format')!r}, not {CACHE_FORMAT}"
        if entry.get("key") != key:
            return "it was written for another key"
        if entry.get("schema_version") != SCHEMA_VERSION:
            return f"result schema {entry.get('schema_version')!r}, not {SCHEMA_VERSION}"
        result = entry.get("result")
        try:
            if entry.get("sha256") != _checksum(result):
                return "its checksum does not match its content"
        except (TypeError, ValueError) as e:
            return f"its result cannot be checksummed ({e})"
        problems = result_problems(result)
        return "; ".join(problems) if problems else None

    def put(self, key: str, result: FitResult) -> None:
        if result.status != "ok":
            return
        data = result.to_dict()
        if result_problems(data):  # would be rejected on load: do not keep it
            return
        entry = {"cache_format": CACHE_FORMAT, "key": key, "schema_version": SCHEMA_VERSION,
                 "sha256": _checksum(data), "result": data}
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{key}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            tmp.write_text(json.dumps(entry, indent=1, allow_nan=False))
            tmp.replace(self._path(key))
        finally:
            tmp.unlink(missing_ok=True)
