"""A student's kernel as the judge drives it: start (confined or not), run a cell with a
time limit, interrupt, kill, and tell whether it died.

The kernel's ZMQ sockets use jupyter_client's ``ipc`` transport (Unix sockets in the
kernel's private run folder), so a sandbox without a network can still be reached.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty

import nbformat
from jupyter_client import BlockingKernelClient

from .sandbox import Sandbox, Watchdog, new_uid

STARTUP_TIMEOUT = 60
INTERRUPT_GRACE = 5.0


class KernelDied(Exception):
    """The kernel process ended (os._exit, exit(), a crash, memory, a kill)."""


@dataclass
class Outcome:
    outputs: list = field(default_factory=list)
    status: str = "ok"  # ok | error | timeout | died
    execution_count: int | None = None
    started: bool = False  # the kernel took up the request (it said busy or echoed the input)
    exiting: bool = False  # the cell called exit(): the kernel stops shortly after its reply


class Kernel:
    """One kernel process; ``scratch`` is its working folder (and its only writable one)."""

    def __init__(self, sandbox: Sandbox | None, scratch: Path, log=None):
        self.sandbox = sandbox
        self.scratch = Path(scratch)
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.client: BlockingKernelClient | None = None
        self.rundir: str | None = None
        self.uid: int | None = None
        self.watchdog: Watchdog | None = None
        self._idle: set[str] = set()  # requests seen finishing while nobody waited for them

    # ------------------------------------------------------------------ life

    def start(self) -> None:
        self.rundir = tempfile.mkdtemp(prefix="grader-kernel-")
        self.uid = new_uid() if (self.sandbox is not None and os.geteuid() == 0) else None
        if self.uid is not None:
            for path in (self.rundir, self.scratch):
                _chown_tree(Path(path), self.uid)
        connection = {
            "transport": "ipc", "ip": os.path.join(self.rundir, "k"), "shell_port": 1,
            "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5,
            "key": secrets.token_hex(16), "signature_scheme": "hmac-sha256", "kernel_name": "python3",
        }
        conn_file = os.path.join(self.rundir, "kernel.json")
        with open(conn_file, "w") as f:
            json.dump(connection, f)
        os.chmod(conn_file, 0o644)
        argv = ["-m", "ipykernel_launcher", "-f", conn_file, "--HistoryManager.hist_file=:memory:"]
        if self.sandbox is not None:
            cmd = self.sandbox.command(argv, str(self.scratch), self.rundir, self.uid)
            env = None
        else:
            cmd = [sys.executable, *argv]
            from .paths import subprocess_env

            env = subprocess_env()
            env.pop("JPY_PARENT_PID", None)
            env["NBGRADER_EXECUTION"] = "autograde"
        self._stderr = open(os.path.join(self.rundir, "kernel.log"), "w+")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._stderr,
                                     stderr=subprocess.STDOUT, cwd=str(self.scratch), env=env,
                                     start_new_session=True)
        if self.sandbox is not None and self.sandbox.max_processes > 0:
            self.watchdog = Watchdog(self.proc.pid, self.sandbox.max_processes)
        self.client = BlockingKernelClient()
        self.client.load_connection_info(connection)
        self.client.start_channels()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise KernelDied("the kernel did not start: " + self.startup_log())
            try:
                self.client.kernel_info()
                reply = self.client.get_shell_msg(timeout=1)
                # The kernel answers; IOPub is joined once a message comes through it (the
                # status of this request). Before that, the status and outputs of the first
                # cell could be lost (a subscriber joins late), and the cell would seem never
                # to run: ask again until one comes, as jupyter_client does.
                if reply["msg_type"] == "kernel_info_reply" and self.client.get_iopub_msg(timeout=1):
                    break
            except Empty:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise KernelDied("the kernel did not answer within "
                                 f"{STARTUP_TIMEOUT} s: " + self.startup_log())
        self._drain_iopub()

    def startup_log(self) -> str:
        try:
            self._stderr.seek(0)
            return " | ".join(self._stderr.read().strip().splitlines()[-5:])
        except Exception:
            return ""

    @property
    def death_reason(self) -> str | None:
        """Why the sandbox killed this kernel (a limit it reached), if it did."""
        return self.watchdog.reason if self.watchdog is not None else None

    def stray_processes(self) -> int:
        """Processes the kernel's code left in its sandbox (beyond the sandbox's init and
        the kernel itself): forked children that an interrupt does not reach."""
        if self.watchdog is None or not self.alive():
            return 0
        return max(0, self.watchdog.processes() - 2)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def interrupt(self) -> None:
        """Ask the kernel to raise KeyboardInterrupt (over its control channel)."""
        if not self.alive():
            return
        try:
            msg = self.client.session.msg("interrupt_request", {})
            self.client.control_channel.send(msg)
        except Exception:
            pass

    def kill(self) -> None:
        if self.watchdog is not None:
            self.watchdog.stop()
        if self.client is not None:
            try:
                self.client.stop_channels()
            except Exception:
                pass
            self.client = None
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.rundir:
            shutil.rmtree(self.rundir, ignore_errors=True)
            self.rundir = None

    # ------------------------------------------------------------------ cells

    def _drain_iopub(self) -> None:
        while True:
            try:
                self.client.get_iopub_msg(timeout=0.05)
            except Empty:
                return

    def execute(self, code: str, timeout: float, silent: bool = False, collect: bool = True) -> Outcome:
        """Run ``code``; on timeout interrupt, then kill if it does not stop."""
        return self.wait(self.begin(code, silent), timeout, collect)

    def begin(self, code: str, silent: bool = False) -> str:
        """Send ``code`` for execution; returns the request's id for :meth:`wait`."""
        return self.client.execute(code, silent=silent, store_history=not silent, allow_stdin=False)

    def finished(self, msg_id: str) -> bool:
        """Whether request ``msg_id`` has ended (reads what the kernel said, without waiting);
        only for requests whose outputs nobody collects."""
        while msg_id not in self._idle:
            try:
                msg = self.client.get_iopub_msg(timeout=0)
            except Empty:
                break
            if (msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle"
                    and msg.get("parent_header", {}).get("msg_id")):
                self._idle.add(msg["parent_header"]["msg_id"])
        return msg_id in self._idle

    def wait(self, msg_id: str, timeout: float, collect: bool = True) -> Outcome:
        """Collect the outputs of request ``msg_id`` until the kernel is idle again."""
        outcome = Outcome()
        deadline = time.monotonic() + timeout
        interrupted_at = None
        idle = msg_id in self._idle
        replied = idle
        while not (idle and replied):
            if not self.alive():
                outcome.status = "died"
                return outcome
            now = time.monotonic()
            if interrupted_at is None and now > deadline:
                interrupted_at = now
                outcome.status = "timeout"
                self.interrupt()
            if interrupted_at is not None and now > interrupted_at + INTERRUPT_GRACE:
                self.kill()
                outcome.status = "timeout"
                return outcome
            try:
                msg = self.client.get_iopub_msg(timeout=0.1)
            except Empty:
                msg = None
            if msg is not None and msg.get("parent_header", {}).get("msg_id") == msg_id:
                kind = msg["msg_type"]
                content = msg["content"]
                outcome.started = True
                if kind == "status" and content.get("execution_state") == "idle":
                    idle = True
                elif kind == "execute_input":
                    outcome.execution_count = content.get("execution_count")
                elif kind == "clear_output" and collect:
                    outcome.outputs.clear()
                elif kind in ("stream", "display_data", "execute_result", "error", "update_display_data") and collect:
                    if kind == "update_display_data":
                        continue
                    try:
                        outcome.outputs.append(nbformat.v4.output_from_msg(msg))
                    except Exception:
                        pass
                    if kind == "error" and outcome.status == "ok":
                        outcome.status = "error"
            if not replied:
                try:
                    reply = self.client.get_shell_msg(timeout=0)
                    if reply.get("parent_header", {}).get("msg_id") == msg_id:
                        replied = True
                        if reply["content"].get("status") == "error" and outcome.status == "ok":
                            outcome.status = "error"
                        payloads = reply["content"].get("payload") or []
                        outcome.exiting = any(isinstance(p, dict) and p.get("source") == "ask_exit"
                                              for p in payloads)
                except Empty:
                    pass
        return outcome


def _chown_tree(path: Path, uid: int) -> None:
    os.chown(path, uid, uid)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            try:
                os.chown(os.path.join(dirpath, name), uid, uid, follow_symlinks=False)
            except OSError:
                pass
