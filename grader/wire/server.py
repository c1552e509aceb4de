"""The kernel's end of the wire, run inside the sandbox for one test cell at a time.

The judge executes ``import grader.wire.server as s; s.serve(PATH)`` in the student's
kernel (the only grader code the sandbox can see is this package). ``serve`` connects to
the judge's socket, says hello (carrying the kernel's RNG state, so the judge starts from
the student's random stream), then answers requests until the judge says it is done.
Student code that replaces this function only changes what its own objects answer.
"""
from __future__ import annotations

from . import peer as _peer


def _namespace() -> dict:
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            return shell.user_ns
    except ImportError:  # pragma: no cover
        pass
    import __main__

    return vars(__main__)


def serve(path: str) -> None:
    connection = _peer.connect(path, _peer.KERNEL, _namespace())
    try:
        connection.send({"op": "hello"})
        connection.serve()
    finally:
        connection.reset()
        connection.sock.close()
