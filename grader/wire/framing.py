"""Length-prefixed messages: a JSON header and raw byte buffers, with size limits.

A frame is ``!I`` header length, the UTF-8 JSON header ``{"m": message, "b": [sizes]}``,
then the buffers. Nothing is unpickled; sizes are checked before anything is read.
"""
from __future__ import annotations

import json
import socket
import struct
import time

MAX_HEADER = 16 * 2**20
MAX_BUFFERS = 1024 * 2**20
MAX_BUFFER_COUNT = 100_000


class WireError(BaseException):
    """The other side sent something this side refuses (too large, malformed). Not an
    Exception: a check's ``except Exception`` must not mistake it for the student's error."""


class PeerGone(BaseException):
    """The other side closed the connection (its process died or hung up)."""


class Deadline(BaseException):
    """No message arrived before the deadline."""


def _recv_exact(sock: socket.socket, n: int, deadline: float | None) -> bytes:
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Deadline()
            sock.settimeout(min(left, 3600))
        else:
            sock.settimeout(None)
        try:
            chunk = sock.recv(min(n - got, 4 * 2**20))
        except socket.timeout:
            raise Deadline() from None
        except OSError as exc:
            raise PeerGone(str(exc)) from None
        if not chunk:
            raise PeerGone("connection closed")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def send(sock: socket.socket, message: dict, buffers: list[bytes]) -> None:
    header = json.dumps({"m": message, "b": [len(b) for b in buffers]},
                        separators=(",", ":")).encode()
    sock.settimeout(None)
    try:
        sock.sendall(struct.pack("!I", len(header)) + header)
        for buf in buffers:
            sock.sendall(buf)
    except OSError as exc:
        raise PeerGone(str(exc)) from None


def recv(sock: socket.socket, deadline: float | None = None,
         max_buffers: int = MAX_BUFFERS) -> tuple[dict, list[bytes]]:
    (size,) = struct.unpack("!I", _recv_exact(sock, 4, deadline))
    if size > MAX_HEADER:
        raise WireError(f"message header of {size} bytes (limit {MAX_HEADER})")
    try:
        header = json.loads(_recv_exact(sock, size, deadline))
        message, sizes = header["m"], header["b"]
    except (ValueError, KeyError, TypeError) as exc:
        raise WireError(f"malformed message: {exc}") from None
    if (not isinstance(message, dict) or not isinstance(sizes, list)
            or len(sizes) > MAX_BUFFER_COUNT
            or not all(isinstance(s, int) and s >= 0 for s in sizes)):
        raise WireError("malformed message header")
    if sum(sizes) > max_buffers:
        raise WireError(f"message of {sum(sizes)} bytes (limit {max_buffers})")
    return message, [_recv_exact(sock, s, deadline) for s in sizes]
