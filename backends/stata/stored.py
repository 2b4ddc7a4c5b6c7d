"""Stored Stata results: export a suite do-file, import its results file, keep them as JSON.

For machines without Stata (this one, CI): run :func:`export_do` where the specs are, take the
do-file to any Stata 15+, run it there, bring back the ONE results file it writes and
:func:`import_results` it. Each model becomes ``<stored dir>/<id with / as __>.json``, a
canonical :class:`FitResult` with ``provenance.mode = "stored"`` and its source (results file,
Stata version and flavour, date, data checksum). The stored dir is a user folder
(:func:`stored_dir`), never the installed source tree. Numbers the course printed are not
stored results: they are references of the specs, judged at their printed precision.

A stored result stands in for a live fit only when it was made for the same model: every file
carries the model fingerprint (normalised formula, family, link, method, integration) and the
backend refuses a stale one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from backends.stata.mapping import record_to_result
from backends.stata.render import (DATA_MACRO, StataRenderError, data_reference,
                                   model_fingerprint, plan, stata_path, suite_do)
from backends.stata.results_file import read_results
from harness.filenames import stored_stem
from harness.results import FitResult, result_problems
from harness.spec import Spec
from harness.statasyntax import stata_comment

def stored_dir() -> Path:
    """Where stored results live: ``$MLMH_STATA_STORED``, else
    ``$XDG_DATA_HOME/mlm-harness/stata-results`` (``~/.local/share/...``)."""
    env = os.environ.get("MLMH_STATA_STORED")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mlm-harness" / "stata-results"


def stored_path(spec_id: str, folder: Path | None = None) -> Path:
    return (folder or stored_dir()) / (stored_stem(spec_id) + ".json")


def save_stored(result: FitResult, model: dict[str, Any] | None, folder: Path | None = None,
                extra: dict[str, Any] | None = None) -> Path:
    """Write a stored result: the canonical JSON plus the ``model`` fingerprint (and extras)."""
    path = stored_path(result.spec_id, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    d = result.to_dict()
    d["model"] = model
    d.update(extra or {})
    path.write_text(json.dumps(d, indent=2, allow_nan=False) + "\n")
    return path


class StoredResultError(ValueError):
    """A stored result file that cannot be used; the message names the file and the problems."""


def load_stored(spec_id: str, folder: Path | None = None) -> tuple[FitResult, dict[str, Any]] | None:
    """(result, raw JSON) stored for ``spec_id``, or None when there is none.

    The file is validated first (harness.results.result_problems: finite numbers, required
    fields, status ok, and the spec id it is named after); a file that fails raises
    :class:`StoredResultError` instead of becoming an ok fit.
    """
    path = stored_path(spec_id, folder)
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise StoredResultError(f"{path}: cannot be read as JSON ({e})") from None
    problems = result_problems(raw)
    if isinstance(raw, dict) and raw.get("spec_id") != spec_id:
        problems.append(f"it is for spec {raw.get('spec_id')!r}, not {spec_id!r}")
    if problems:
        raise StoredResultError(f"{path} is not a usable stored Stata result: "
                                + "; ".join(problems[:5])
                                + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
                                + "; import it again (mlm-harness stata import) or delete it")
    return FitResult.from_dict(raw), raw


def stored_ids(folder: Path | None = None) -> list[str]:
    folder = folder or stored_dir()
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.glob("*.json")):
        try:
            out.append(json.loads(p.read_text())["spec_id"])
        except (OSError, ValueError, KeyError, TypeError):  # not a stored result
            continue
    return out


def fingerprint_mismatch(spec: Spec, raw: dict[str, Any]) -> str | None:
    """Why a stored result does not stand for ``spec``'s Stata model (None when it does)."""
    stored = raw.get("model")
    if not stored:
        return "the stored result does not say which model it was made for"
    want = model_fingerprint(spec.model_for("stata"))
    diffs = [f"{k}: stored {stored.get(k)!r}, spec {v!r}" for k, v in want.items()
             if stored.get(k) != v]
    return "; ".join(diffs) or None


# ---- export ------------------------------------------------------------------------------------

def _prepared_frame(spec: Spec, data_dir: Path | None) -> tuple[pd.DataFrame | None, Path | None,
                                                                 str | None]:
    """The spec's prepared data (for the random-part structure), its file and SHA-256."""
    try:
        from harness.runner import prepare_data
        prepared = prepare_data(spec, data_dir)
        return prepared.frame, prepared.path, prepared.sha256
    except Exception:
        pass
    try:
        from harness.datasets import locate, sha256_file
        path = locate(spec.dataset, data_dir)
        return None, path, sha256_file(path)
    except Exception:
        entry = None
        try:
            from harness.datasets import load_registry
            entry = load_registry().get(spec.dataset)
        except Exception:
            pass
        return None, None, entry.sha256 if entry is not None else None


def export_do(specs: Iterable[Spec], results_file: str = "mlmh_stata_results.txt",
              data_dir: str | Path | None = None, stata_data_dir: str | None = None,
              use_data: bool = True) -> str:
    """One do-file that fits every spec in Stata 15+ and writes all results into ONE file.

    * ``results_file``: where Stata writes the results (relative paths are relative to Stata's
      working folder);
    * ``data_dir``: where the harness finds the datasets now (to hash them and, with
      ``use_data``, to read the random-part structure from group counts);
    * ``stata_data_dir``: the folder holding the datasets on the Stata machine (becomes
      ``global MLMH_DATA``; default: the folder found here).

    Each model's block records the Stata version and flavour, date, command line, the data
    SHA-256 computed here (and Stata's ``datasignature`` of the prepared data). A spec Stata
    cannot fit (multinomial GLMM, skip) is left out with a comment. Raises nothing for such
    specs; raises :class:`StataRenderError` only if no spec can be exported.
    """
    items = []
    skipped: list[str] = []
    folder_here = None
    for spec in specs:
        skip = spec.skip_reason("stata")
        if skip:
            skipped.append(f"{spec.id}: {skip}")
            continue
        frame, path, sha = _prepared_frame(spec, Path(data_dir) if data_dir else None) \
            if use_data else (None, None, None)
        try:
            layout = plan(spec, frame)
        except StataRenderError as e:
            skipped.append(f"{spec.id}: {e}")
            continue
        if path is not None and folder_here is None:
            folder_here = str(path.parent)
        ref = DATA_MACRO + Path(data_reference(spec, path)).name
        try:
            stata_path(ref)
        except StataRenderError as e:
            skipped.append(f"{spec.id}: the data file name cannot be written: {e}")
            continue
        items.append((spec, layout, ref, sha))
    if not items:
        raise StataRenderError("no spec can be exported to Stata: " + "; ".join(skipped))
    text = suite_do(items, results_file, stata_data_dir or folder_here or "")
    if skipped:
        text = "\n".join(["* Not exported (Stata cannot fit these, or the spec says skip):",
                          *[stata_comment(f"  {s}") for s in skipped], text])
    return text


# ---- import ------------------------------------------------------------------------------------

def import_results(results_file: str | Path, out_dir: str | Path | None = None,
                   save: bool = True) -> dict[str, FitResult]:
    """Turn a results file written by an :func:`export_do` do-file into stored results.

    Returns {spec id: FitResult} (``provenance.mode == "stored"``; failed models come back with
    status ``error`` and are not saved). With ``save`` each ok result is written to
    ``<out_dir>/<spec id with / replaced by __>.json`` (default :func:`stored_dir`),
    replacing an earlier one.
    """
    path = Path(results_file)
    records = read_results(path)
    out: dict[str, FitResult] = {}
    for spec_id, record in records.items():
        meta = record.meta
        source = (f"Stata results file {path.name}: Stata {meta.get('stata_version', '?')} "
                  f"{meta.get('flavour', '')}, run {meta.get('date', '?')}").strip()
        result = record_to_result(record, mode="stored", source=source)
        out[spec_id] = result
        if save and result.status == "ok":
            save_stored(result, record.layout.get("model"),
                        Path(out_dir) if out_dir else None,
                        extra={"stata_layout": record.layout})
    return out
