"""Message framing between the caller and the R worker process.

A message is a JSON header plus raw binary buffers (numeric columns as float64 bytes), so a data
column crosses the pipe as one memcpy instead of thousands of JSON numbers::

    uint32 big-endian header length | header (UTF-8 JSON, with "buffers": [len, ...]) | buffers

Only the standard library is used here: the worker imports this before rpy2, and the caller
never imports rpy2 at all.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import IO, Any

_LEN = struct.Struct(">I")
PARENT_ENV = "MLMH_WORKER_PARENT_PID"  # the caller's pid: the worker exits when it is gone


class ProtocolTimeout(Exception):
    """The other side did not answer before the deadline."""


class ProtocolEOF(Exception):
    """The other side closed the pipe (it exited or crashed)."""


def encode(header: dict[str, Any], buffers: list[bytes] | None = None) -> bytes:
    buffers = buffers or []
    head = dict(header, buffers=[len(b) for b in buffers])
    raw = json.dumps(head, allow_nan=True).encode("utf-8")
    return b"".join([_LEN.pack(len(raw)), raw, *buffers])


def write_message(stream: IO[bytes], header: dict[str, Any],
                  buffers: list[bytes] | None = None) -> None:
    stream.write(encode(header, buffers))
    stream.flush()


def _read_exact_blocking(stream: IO[bytes], n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            raise ProtocolEOF("pipe closed")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_message_blocking(stream: IO[bytes]) -> tuple[dict[str, Any], list[bytes]]:
    """Worker side: wait as long as it takes for the next request."""
    (n,) = _LEN.unpack(_read_exact_blocking(stream, _LEN.size))
    header = json.loads(_read_exact_blocking(stream, n))
    buffers = [_read_exact_blocking(stream, size) for size in header.pop("buffers", [])]
    return header, buffers


class DeadlineReader:
    """Caller side: read from a pipe's file descriptor, giving up at a deadline."""

    def __init__(self, fd: int):
        self.fd = fd

    def _read_exact(self, n: int, deadline: float) -> bytes:
        chunks, got = [], 0
        while got < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProtocolTimeout()
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if not ready:
                raise ProtocolTimeout()
            chunk = os.read(self.fd, min(n - got, 1 << 20))
            if not chunk:
                raise ProtocolEOF("pipe closed")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def read_message(self, timeout: float) -> tuple[dict[str, Any], list[bytes]]:
        deadline = time.monotonic() + timeout
        (n,) = _LEN.unpack(self._read_exact(_LEN.size, deadline))
        header = json.loads(self._read_exact(n, deadline))
        buffers = [self._read_exact(size, deadline) for size in header.pop("buffers", [])]
        return header, buffers
