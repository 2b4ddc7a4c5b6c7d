"""Caller side of the R worker: start it lazily, send requests, enforce timeouts, survive crashes.

Each calling thread gets its own worker process (``threading.local``), created on first use and
reused for every later fit from that thread, so a suite run with N jobs runs N R sessions in
parallel while R, rpy2 and lme4 are loaded only once per worker. A worker that crashed or was
killed for a timeout is replaced on the next request. All workers are stopped at interpreter
exit.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from backends.lme4.protocol import (PARENT_ENV, DeadlineReader, ProtocolEOF, ProtocolTimeout,
                                    write_message)

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 120.0


class WorkerError(Exception):
    """The worker could not answer: it failed to start, crashed, or ran out of time."""


class WorkerStartError(WorkerError):
    pass


class WorkerCrashed(WorkerError):
    pass


class WorkerTimeout(WorkerError):
    pass


def worker_env() -> dict[str, str]:
    """The caller's environment, with this repository importable and BLAS single-threaded.

    One BLAS thread per worker: several workers run in parallel, and a fixed thread count keeps
    the last digits of the estimates independent of the machine.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "is still running"
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class RWorker:
    """One worker process and its pipes."""

    def __init__(self, python: str | None = None, startup_timeout: float = STARTUP_TIMEOUT_S):
        self.python = python or sys.executable
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_file: Any = None
        self.versions: dict[str, str | None] = {}
        self.startup_seconds: float | None = None
        self.fits = 0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        import time

        self.stop()
        self.stderr_file = tempfile.TemporaryFile(prefix="mlm-harness-r-worker-")
        t0 = time.perf_counter()
        # A session of its own: a Ctrl-C at the terminal reaches the harness only, which then
        # kills the worker (harness/interrupt.py); the worker exits by itself when the harness
        # dies (backends/lme4/worker.py, exit_with_parent).
        self.proc = subprocess.Popen(
            [self.python, "-m", "backends.lme4.worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.stderr_file,
            env={**worker_env(), PARENT_ENV: str(os.getpid())}, cwd=REPO_ROOT, close_fds=True,
            start_new_session=True)
        try:
            hello, _ = self._read(self.startup_timeout, starting=True)
        except WorkerError as e:
            self.stop()
            raise WorkerStartError(f"the R worker did not start: {e}") from None
        if hello.get("status") != "ok":
            message = hello.get("message", "unknown error")
            self.stop()
            raise WorkerStartError(f"the R worker could not load R/rpy2/lme4: {message}")
        self.versions = hello.get("versions", {})
        self.startup_seconds = time.perf_counter() - t0

    def stderr_tail(self, limit: int = 2000) -> str:
        if self.stderr_file is None:
            return ""
        try:
            self.stderr_file.seek(0, os.SEEK_END)
            size = self.stderr_file.tell()
            self.stderr_file.seek(max(0, size - limit))
            return self.stderr_file.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""

    def _read(self, timeout: float, starting: bool = False) -> tuple[dict[str, Any], list[bytes]]:
        assert self.proc is not None and self.proc.stdout is not None
        try:
            return DeadlineReader(self.proc.stdout.fileno()).read_message(timeout)
        except ProtocolTimeout:
            self.kill()
            what = "start" if starting else "finish"
            raise WorkerTimeout(f"R did not {what} within {timeout:g} s") from None
        except ProtocolEOF:
            raise self._crashed() from None

    def _crashed(self) -> WorkerCrashed:
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        tail = self.stderr_tail()
        self.proc = None
        return WorkerCrashed(f"the R worker process {_describe_exit(code)}"
                             + (f"; its last output: {tail}" if tail else ""))

    def request(self, header: dict[str, Any], buffers: list[bytes] | None = None,
                timeout: float = 600.0) -> dict[str, Any]:
        """Send one request and wait for its answer; start the worker first if needed."""
        for attempt in (1, 2):
            if not self.alive:
                self.start()
            assert self.proc is not None and self.proc.stdin is not None
            try:
                write_message(self.proc.stdin, header, buffers)
                break
            except (BrokenPipeError, OSError):
                # it died while idle, before reading this request: replace it once and resend
                crashed = self._crashed()
                if attempt == 2:
                    raise crashed from None
        reply, _ = self._read(timeout)
        self.fits += 1
        return reply

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def stop(self) -> None:
        """Close stdin (the worker exits by itself), then make sure it is gone."""
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                if proc.stdin:
                    proc.stdin.close()
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            for stream in (proc.stdout,):
                if stream:
                    stream.close()
        if self.stderr_file is not None:
            self.stderr_file.close()
            self.stderr_file = None


class WorkerPool:
    """One worker per calling thread, created lazily, reused, and inherited across threads.

    A thread's worker stays with that thread. When a thread ends (a ThreadPoolExecutor of a
    finished suite run), its worker is idle for good: the next thread that needs one adopts it
    instead of paying R's start-up again, so repeated parallel runs keep at most as many R
    processes as their largest pool had threads.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._owners: dict[RWorker, threading.Thread] = {}
        self._lock = threading.Lock()

    def get(self) -> RWorker:
        worker = getattr(self._local, "worker", None)
        if worker is not None:
            return worker
        me = threading.current_thread()
        with self._lock:
            orphan = next((w for w, t in self._owners.items() if not t.is_alive()), None)
            worker = orphan or RWorker()
            self._owners[worker] = me
        self._local.worker = worker
        return worker

    def workers(self) -> list[RWorker]:
        with self._lock:
            return list(self._owners)

    def close(self) -> None:
        for w in self.workers():
            w.stop()

    def kill(self) -> int:
        """Kill every live worker at once (an interrupted run); returns how many were alive."""
        alive = [w for w in self.workers() if w.alive]
        for w in alive:
            w.kill()
        return len(alive)


POOL = WorkerPool()
atexit.register(POOL.close)


def probe(python: str | None = None, timeout: float = 60.0) -> dict[str, Any]:
    """Start R in a throwaway process and report versions (``{"status": "error"}`` if it fails).

    In a subprocess so a broken rpy2/R pairing (an undefined symbol, a segfault at load) cannot
    take the caller down.
    """
    try:
        done = subprocess.run([python or sys.executable, "-m", "backends.lme4.worker", "--probe"],
                              stdin=subprocess.DEVNULL, capture_output=True, env=worker_env(),
                              cwd=REPO_ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "error", "message": f"starting R through rpy2 took over {timeout:g} s"}
    import json
    import struct

    out = done.stdout
    if len(out) >= 4:
        (n,) = struct.unpack(">I", out[:4])
        try:
            return json.loads(out[4:4 + n])
        except ValueError:
            pass
    err = done.stderr.decode("utf-8", "replace").strip()
    return {"status": "error",
            "message": f"the rpy2 probe {_describe_exit(done.returncode)}: {err[-1500:]}"}
