"""The R worker process: embeds R through rpy2 and fits models on request.

Run as ``python -m backends.lme4.worker`` by :mod:`backends.lme4.client`; never imported by the
caller. Why a separate process speaking length-prefixed JSON over pipes, rather than
``multiprocessing`` with the 'spawn' context:

* R is embedded in the process that imports rpy2, with no way to unload it: a segfault in
  compiled code, ``quit()``, or an R build that rpy2 cannot load must not take the caller down.
  Any separate process gives that; this one also gives:
* no pickling and no re-import of the caller's ``__main__`` (spawn re-runs the main module of the
  parent, which under pytest, the CLI or a notebook is fragile); the worker imports only this
  module, rpy2 and the standard library, and can be started by hand for debugging;
* an explicit, tiny protocol (:mod:`backends.lme4.protocol`): numeric columns travel as raw
  float64 bytes, results as JSON, so the caller needs neither rpy2 nor R to read them;
* a clean kill: the caller owns a ``Popen`` it can ``kill()`` on a timeout and replace.

The worker loads R, rpy2 and lme4 once (about 2 s) and then serves fits until its stdin closes.
R's console output is captured through rpy2's callbacks, and file descriptor 1 is pointed at
stderr, so nothing R or a C library prints can corrupt the protocol stream.

``python -m backends.lme4.worker --probe`` prints versions as JSON and exits (the cheap,
crash-proof availability check).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from backends.lme4.protocol import PARENT_ENV, ProtocolEOF, read_message_blocking, write_message

EXTRACT_R = Path(__file__).with_name("extract.R")
#: the glmmTMB backend's extraction, sourced beside EXTRACT_R: one worker serves both backends
EXTRACT_GLMMTMB_R = Path(__file__).parents[1] / "glmmtmb" / "extract.R"
PARENT_POLL_S = 0.2
EXIT_ORPHANED = 3
_VERSIONS_R = """
local({
  v <- function(p) tryCatch(as.character(utils::packageVersion(p)), error = function(e) NA_character_)
  c(R = paste(R.version$major, R.version$minor, sep = "."), lme4 = v("lme4"),
    Matrix = v("Matrix"), ordinal = v("ordinal"), glmmTMB = v("glmmTMB"), TMB = v("TMB"),
    platform = R.version$platform)
})
"""


def _rpy2_version() -> str:
    from importlib import metadata

    for dist in ("rpy2", "rpy2-rinterface"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def _cffi_mode() -> str:
    try:
        import _rinterface_cffi_api  # noqa: F401  (rpy2's compiled API-mode module)
        return "API"
    except ImportError:
        return "ABI"


class RSession:
    """The embedded R, with lme4 attached and the extraction code sourced."""

    def __init__(self, console: list[str], load_packages: bool = True):
        self.console = console
        import rpy2.rinterface_lib.callbacks as callbacks

        callbacks.consolewrite_print = self.console.append
        callbacks.consolewrite_warnerror = self.console.append
        callbacks.showmessage = self.console.append
        import rpy2.robjects as ro
        import rpy2.rinterface as ri

        self.ro = ro
        self.ri = ri
        ro.r("options(warn = 1, scipen = 0)")  # warnings are caught per fit by harness_run
        raw = ro.r(_VERSIONS_R)
        self.versions = {k: (None if v is ri.NA_Character else str(v))
                         for k, v in zip(raw.names, raw)}
        self.versions["rpy2"] = _rpy2_version()
        self.versions["rpy2_cffi_mode"] = _cffi_mode()
        if load_packages:
            ro.r("suppressPackageStartupMessages(library(lme4))")
            ro.r["source"](str(EXTRACT_R))
            ro.r["source"](str(EXTRACT_GLMMTMB_R))

    # ---- requests ------------------------------------------------------------------------------
    def fit(self, header: dict[str, Any], buffers: list[bytes]) -> dict[str, Any]:
        import numpy as np

        ro, ri = self.ro, self.ri
        t0 = time.perf_counter()
        cols: dict[str, Any] = {}
        buf_iter = iter(buffers)
        for col in header["columns"]:
            if col["type"] == "float64":
                arr = np.frombuffer(next(buf_iter), dtype="<f8")
                cols[col["name"]] = ro.FloatVector(arr)
            elif col["type"] == "bool":
                cols[col["name"]] = ro.BoolVector(
                    [ri.NA_Logical if v is None else bool(v) for v in col["values"]])
            else:
                values = [ri.NA_Character if v is None else str(v) for v in col["values"]]
                cols[col["name"]] = ro.StrVector(values)
        ro.globalenv["d"] = ro.r["harness_frame"](ro.ListVector(cols))
        for line in header.get("setup", []):
            ro.r(line)
        bind_s = time.perf_counter() - t0
        kind = header["kind"]
        cluster = header.get("cluster")
        args = [header["call"], kind]
        kwargs: dict[str, Any] = {"ols": bool(header.get("ols", False))}
        if cluster:
            kwargs["cluster"] = cluster
        if kind in ("clmm", "clm"):
            ro.r('suppressPackageStartupMessages(requireNamespace("ordinal", quietly = TRUE))')
        elif kind == "glmmTMB":  # loaded on first use: lme4-only sessions never pay for it
            ro.r('suppressPackageStartupMessages(requireNamespace("glmmTMB", quietly = TRUE))')
        try:
            res = ro.r["harness_run"](*args, **kwargs)
            out = to_python(res, ri)
        finally:
            ro.r("rm(list = intersect(c('d', '.Last.value'), ls(globalenv(), all.names = TRUE)),"
                 " envir = globalenv())")
        for key in ("status", "message", "fit_r", "call"):  # scalars in the reply's envelope
            if isinstance(out.get(key), list):
                out[key] = out[key][0] if out[key] else None
        out["bind_s"] = bind_s
        return out

    def evaluate(self, code: str) -> dict[str, Any]:
        """Evaluate R code and return its value converted (used by tests and diagnostics)."""
        res = self.ro.r(code)
        return {"status": "ok", "value": None if res is None else to_python(res, self.ri)}


def to_python(obj: Any, ri: Any) -> Any:
    """An R value as JSON-ready Python: lists stay lists (dicts when named), NA -> None.

    Atomic vectors always become Python lists (length 1 included): the reader knows which
    entries are scalars, and no R vector changes type because of its length.
    """
    if obj is None or obj is ri.NULL or isinstance(obj, type(ri.NULL)):
        return None
    rtype = getattr(obj, "typeof", None)
    names = None
    try:
        nm = obj.names
        if nm is not ri.NULL and nm is not None and not isinstance(nm, type(ri.NULL)):
            names = [str(n) for n in nm]
    except (AttributeError, ValueError):
        names = None
    if rtype == ri.RTYPES.VECSXP:
        items = [to_python(v, ri) for v in obj]
        return dict(zip(names, items)) if names else items
    if rtype == ri.RTYPES.REALSXP:
        return [float(v) for v in obj]  # NA and NaN both come back as nan
    if rtype == ri.RTYPES.INTSXP:
        return [None if v is ri.NA_Integer else int(v) for v in obj]
    if rtype == ri.RTYPES.LGLSXP:
        return [None if v is ri.NA_Logical else bool(v) for v in obj]
    if rtype == ri.RTYPES.STRSXP:
        return [None if v is ri.NA_Character else str(v) for v in obj]
    return str(obj)


def _serve(session: RSession, stdin: Any, out: Any) -> None:
    while True:
        try:
            header, buffers = read_message_blocking(stdin)
        except ProtocolEOF:
            return
        op = header.get("op")
        session.console.clear()
        try:
            if op == "fit":
                reply = session.fit(header, buffers)
            elif op == "eval":
                reply = session.evaluate(header["code"])
            elif op == "ping":
                reply = {"status": "ok"}
            else:
                reply = {"status": "error", "message": f"unknown request {op!r}"}
        except Exception as e:  # an rpy2/R error outside harness_run: report, keep serving
            reply = {"status": "error", "message": _r_error_text(e, session.console),
                     "traceback": traceback.format_exc()}
        reply["console"] = "".join(session.console)[-4000:]
        write_message(out, reply)


def _r_error_text(e: BaseException, console: list[str]) -> str:
    text = str(e).strip()
    said = "".join(console).strip()
    if said and said not in text:
        text = f"{text}\nR said: {said[-2000:]}"
    return f"{type(e).__name__}: {text}"


def exit_with_parent(parent: int, interval: float = PARENT_POLL_S) -> None:
    """Exit at once when the caller is gone, however it died (kill -9 included).

    A worker in the middle of a fit reads nothing from its stdin, so it would not notice the
    caller's end until the fit finished (a census model: minutes, 4.6 GB); a SIGKILLed caller
    never gets to kill it. A daemon thread polls the parent pid instead: when the caller dies
    the worker is re-parented and ``getppid()`` changes. R runs with the GIL released (rpy2
    calls R through cffi), so the thread gets to run while R computes; measured: the worker is
    gone 0.08-0.15 s after ``kill -9`` of its caller in the middle of a fit (tests/test_faults.py). Linux's
    PR_SET_PDEATHSIG is not used: it fires when the *thread* that started the worker ends, and
    workers outlive the fit threads that start them (client.WorkerPool adopts them).
    """
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(EXIT_ORPHANED)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def main(argv: list[str]) -> int:
    parent = os.environ.get(PARENT_ENV)
    if parent and parent.isdigit():
        exit_with_parent(int(parent))
    # Keep the real stdout for the protocol; everything else that writes to fd 1 goes to stderr.
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    probe = "--probe" in argv
    console: list[str] = []
    try:
        session = RSession(console, load_packages=not probe)
        hello = {"status": "ok", "versions": session.versions, "pid": os.getpid()}
    except BaseException as e:  # rpy2 missing/broken, R cannot start, lme4 missing
        session = None
        hello = {"status": "error", "message": _r_error_text(e, console),
                 "traceback": traceback.format_exc()}
    write_message(proto_out, hello)
    if probe or session is None:
        return 0 if session is not None else 1
    _serve(session, sys.stdin.buffer, proto_out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
