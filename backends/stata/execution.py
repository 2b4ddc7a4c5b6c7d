"""Finding Stata and running a do-file in it: live through pystata, or batch (``stata -b do``).

Both modes run the same do-file, which writes the same results file (``results_file.py``), read
by the same reader: the mode changes how Stata is started, never how its numbers are read.

Where Stata is looked for (first found wins):

* live: ``STATA_HOME`` (or the spec option ``stata_home``) and the ``stata_setup`` package
  (shipped with Stata 17+ in ``<STATA_HOME>/utilities``; ``pip install stata_setup``), edition
  from ``STATA_EDITION`` (default ``se``);
* batch: ``STATA_EXE``, else ``stata-mp``, ``stata-se`` or ``stata`` in ``STATA_HOME`` or on
  ``PATH``.

``MLMH_STATA_MODE`` = ``live`` | ``batch`` | ``stored`` forces one mode (``stored`` never starts
Stata). A Stata that is found is probed once (a tiny do-file that writes its version): a failed
licence check shows up there, with the log tail, instead of as an empty result later.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from backends.stata.render import HANDLE, RESULTS_FORMAT, RESULTS_VERSION
from backends.stata.results_file import ResultsFileError, StataRecord, read_results

EXECUTABLES = ("stata-mp", "stata-se", "stata")
LICENCE = re.compile(r"licen[cs]e|not\s+licensed|serial number|authori[sz]ation", re.I)
STATA_ERROR = re.compile(r"^r\((\d+)\);\s*$", re.M)
_LOCK = threading.Lock()  # one Stata session (pystata) at a time
_BATCHES: set[subprocess.Popen[str]] = set()  # batch Stata processes running now
_BATCHES_LOCK = threading.Lock()


class StataRunError(RuntimeError):
    """Stata did not produce results; ``str()`` says why and includes the log tail."""

    def __init__(self, message: str, log_tail: str = "", licence: bool = False):
        self.log_tail = log_tail
        self.licence = licence
        super().__init__(message + (f"\n--- Stata log (last lines) ---\n{log_tail}"
                                    if log_tail else ""))


@dataclass(frozen=True)
class StataInstall:
    """What was found: mode ``live`` or ``batch`` (or ``none``) and where, plus why not."""

    mode: str  # live | batch | none
    location: str = ""
    edition: str = "se"
    version: str = ""
    flavour: str = ""
    problem: str = ""  # set when a Stata was found but cannot be used (licence, probe failure)
    licence_failure: bool = False

    @property
    def usable(self) -> bool:
        return self.mode in ("live", "batch") and not self.problem


def tail(text: str, n: int = 15) -> str:
    return "\n".join(text.rstrip().splitlines()[-n:])


def find_executable(home: str | None = None) -> str | None:
    exe = os.environ.get("STATA_EXE")
    if exe:
        return exe if (Path(exe).is_file() or shutil.which(exe)) else None
    if home:
        for name in EXECUTABLES:
            p = Path(home) / name
            if p.is_file() and os.access(p, os.X_OK):
                return str(p)
    for name in EXECUTABLES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _stata_setup_importable() -> bool:
    if "stata_setup" in sys.modules:
        return True
    import importlib.util
    return importlib.util.find_spec("stata_setup") is not None


_LIVE_STATE: dict[str, object] = {}


def _live_session(home: str, edition: str):
    """The pystata ``stata`` module, configured once per process (licence checked here)."""
    key = f"{home}|{edition}"
    if _LIVE_STATE.get("key") == key:
        return _LIVE_STATE["stata"]
    import stata_setup  # type: ignore[import-not-found]
    try:
        stata_setup.config(home, edition)
    except BaseException as e:  # pystata raises SystemError/SystemExit on licence trouble
        msg = f"{type(e).__name__}: {e}"
        raise StataRunError(f"pystata could not start Stata at {home} ({edition}): {msg}",
                            licence=bool(LICENCE.search(msg))) from None
    from pystata import stata  # type: ignore[import-not-found]
    _LIVE_STATE.update(key=key, stata=stata)
    return stata


def _probe_do(results: Path) -> str:
    return "\n".join([
        f"* mlmh-results: {results}", "version 15",
        f'file open {HANDLE} using "{results}", write text replace',
        f'file write {HANDLE} "{RESULTS_FORMAT}" _tab "{RESULTS_VERSION}" _n',
        f'file write {HANDLE} "model" _tab "probe" _n',
        'local mlmh_flavour = cond(c(MP), "MP", cond(c(SE), "SE", "BE/IC"))',
        f'file write {HANDLE} "meta" _tab "stata_version" _tab "`c(stata_version)\'" _n',
        f'file write {HANDLE} "meta" _tab "flavour" _tab "`mlmh_flavour\'" _n',
        f'file write {HANDLE} "end" _tab "probe" _n',
        f"file close {HANDLE}", ""])


def _run_tracked(cmd: list[str], cwd: Path, timeout: float | None
                 ) -> subprocess.CompletedProcess[str]:
    """``subprocess.run`` whose process :func:`stop_batches` can kill from another thread."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    with _BATCHES_LOCK:
        _BATCHES.add(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:  # a timeout, or the harness interrupted in this thread
        _kill(proc)
        proc.communicate()
        raise
    finally:
        with _BATCHES_LOCK:
            _BATCHES.discard(proc)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _kill(proc: subprocess.Popen[str]) -> None:
    """Kill the batch process and whatever it started (it leads its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def stop_batches() -> int:
    """Kill every batch Stata this process is running (the run was interrupted)."""
    with _BATCHES_LOCK:
        running = [p for p in _BATCHES if p.poll() is None]
    for p in running:
        _kill(p)
    return len(running)


def run_batch(exe: str, do_text: str, workdir: Path, name: str = "model",
              timeout: float | None = None) -> tuple[dict[str, StataRecord], str]:
    """Run ``exe -b do <name>.do`` in ``workdir``; return the results file's records and the log.

    Raises :class:`StataRunError` (with the log tail) when Stata fails to start, reports a
    licence problem, stops with an error, or leaves no results file.
    """
    do_path = workdir / f"{name}.do"
    results = workdir / f"{name}.results.txt"
    do_text = do_text.replace("@RESULTS@", str(results))
    do_path.write_text(do_text)
    try:
        proc = _run_tracked([exe, "-b", "do", do_path.name], workdir, timeout)
    except FileNotFoundError:
        raise StataRunError(f"cannot run {exe}: no such program") from None
    except subprocess.TimeoutExpired:
        raise StataRunError(f"{exe} did not finish within {timeout} s") from None
    log_path = workdir / f"{name}.log"
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    everything = "\n".join([log, proc.stdout or "", proc.stderr or ""]).strip()
    if LICENCE.search(everything) and not results.exists():
        raise StataRunError(f"{exe} failed its licence check", tail(everything), licence=True)
    if not results.exists():
        why = (f"exit status {proc.returncode}" if proc.returncode else
               "it wrote no results file")
        m = STATA_ERROR.search(log)
        if m:
            why = f"it stopped with r({m.group(1)})"
        raise StataRunError(f"{exe} produced no results ({why})", tail(everything))
    try:
        records = read_results(results)
    except ResultsFileError as e:
        raise StataRunError(f"{exe} wrote an unreadable results file: {e}",
                            tail(everything)) from None
    return records, log


def run_live(home: str, edition: str, do_text: str, workdir: Path
             ) -> tuple[dict[str, StataRecord], str]:
    """Run the do-file in a pystata session; same results file, same reader as batch mode."""
    results = workdir / "model.results.txt"
    do_text = do_text.replace("@RESULTS@", str(results))
    with _LOCK:
        stata = _live_session(home, edition)
        try:
            stata.run(do_text, quietly=True)
        except BaseException as e:  # pystata raises SystemError for a Stata error r(#)
            raise StataRunError(f"Stata (pystata) stopped: {type(e).__name__}: {e}",
                                licence=bool(LICENCE.search(str(e)))) from None
    if not results.exists():
        raise StataRunError("Stata (pystata) ran but wrote no results file")
    try:
        return read_results(results), ""
    except ResultsFileError as e:
        raise StataRunError(f"Stata (pystata) wrote an unreadable results file: {e}") from None


def detect(home: str | None = None, edition: str | None = None,
           timeout: float = 120) -> StataInstall:
    """Find a usable Stata (live first, then batch) and probe it once."""
    forced = os.environ.get("MLMH_STATA_MODE", "").strip().lower()
    if forced == "stored":
        return StataInstall("none", problem="MLMH_STATA_MODE=stored: Stata is not started")
    home = home or os.environ.get("STATA_HOME") or None
    edition = (edition or os.environ.get("STATA_EDITION") or "se").lower()
    problems = []
    licence = False
    if forced in ("", "live") and home:
        if not Path(home).is_dir():
            problems.append(f"STATA_HOME={home} is not a folder")
        elif not _stata_setup_importable():
            problems.append("STATA_HOME is set but the stata_setup package is missing "
                            "(pip install stata_setup, or use batch mode)")
        else:
            with tempfile.TemporaryDirectory(prefix="mlmh-stata-probe-") as tmp:
                try:
                    recs, _ = run_live(home, edition, _probe_do(Path("@RESULTS@")), Path(tmp))
                    meta = recs.get("probe", StataRecord("probe")).meta
                    return StataInstall("live", home, edition, meta.get("stata_version", ""),
                                        meta.get("flavour", ""))
                except StataRunError as e:
                    if forced == "live":
                        return StataInstall("live", home, edition, problem=str(e),
                                            licence_failure=e.licence)
                    problems.append(str(e))
                    licence = licence or e.licence
    if forced in ("", "batch"):
        exe = find_executable(home)
        if exe:
            with tempfile.TemporaryDirectory(prefix="mlmh-stata-probe-") as tmp:
                try:
                    recs, _ = run_batch(exe, _probe_do(Path("@RESULTS@")), Path(tmp), "probe",
                                        timeout=timeout)
                    meta = recs.get("probe", StataRecord("probe")).meta
                    return StataInstall("batch", exe, edition, meta.get("stata_version", ""),
                                        meta.get("flavour", ""))
                except StataRunError as e:
                    return StataInstall("batch", exe, edition, problem=str(e),
                                        licence_failure=e.licence)
    if problems:
        return StataInstall("none", home or "", edition, problem="; ".join(problems),
                            licence_failure=licence)
    return StataInstall("none", problem=(
        "no Stata found (STATA_HOME is not set, STATA_EXE is not set, and no stata-mp, stata-se "
        "or stata is on PATH)"))
