"""The trusted side of autograding: drive a notebook cell by cell and decide each test.

nbgrader's ``autograde`` runs this as its execute step (``JudgeExecute`` replaces
nbgrader's ``Execute`` in ``nbgrader_config.py``). For every code cell of the submission:

* a cell that is not a test runs in the student's kernel, confined by ``grader.sandbox``;
  its outputs become the cell's outputs, as under nbgrader;
* a test cell (by its grade_id in the gradebook) never reaches the kernel: the judge takes
  the cell's code from the instructor's source (hidden tests included) and runs it here,
  in the nbgrader process, against proxies of the student's objects that the kernel serves
  over a socket (``grader.wire``). The verdict and its teaching message are written as the
  cell's outputs, so nbgrader's gradebook, feedback and formgrader show the judge's result.

Questions answered from a run (``check_best_p(best_p, sweep)``) read the run's values as
they were when the instructor's locked cell that computed them finished: the judge copies
them out of the kernel right then (``runs``), so nothing the student's later cells do to
``sweep`` reaches the check. A run that failed or was deleted leaves its names undefined.

A cell that kills the kernel (``os._exit``, ``exit()``, memory, a loop that ignores
SIGINT and is killed after the timeout) scores 0 for what depends on it: a fresh kernel
replays the notebook without that cell and grading goes on. Each notebook also has a
wall-clock budget (``c.Sandbox.notebook_timeout``).
"""
from __future__ import annotations

import builtins
import copy
import os
import shutil
import socket
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

from .kernel import INTERRUPT_GRACE, Kernel, KernelDied, Outcome
from .sandbox import Sandbox
from .wire import framing
# torch and the wire (which imports it) are imported where a kernel is judged, not here:
# nbgrader's passes that only prepare or record a notebook start 0.6 s sooner.
if TYPE_CHECKING:  # pragma: no cover
    from .wire.peer import Peer

SERVE = "import grader.wire.server as _grader_wire; _grader_wire.serve({path!r}); del _grader_wire"
MAX_SCRATCH_FILE = 50 * 2**20
CONNECT_TIMEOUT = 30.0
MAX_RESTARTS = 20


_NOT_REACHED = "\0not reached"


class TestTimeout(BaseException):
    """A test cell ran past its time limit (not an Exception: checks must not catch it)."""


class _KernelGone(BaseException):
    """The kernel died while a test cell was talking to it."""


class RunMissing(NameError):
    """A name a test reads from a run that did not finish (its message is the feedback)."""


class _NotData(Exception):
    """A value that is not plain data (a function, a module): it is read live."""


def _detached(value, depth: int = 0):
    """A copy of a value that came over the wire, sharing nothing with the kernel (tensors
    cloned out of their twins); :class:`_NotData` for anything but plain data."""
    import torch

    if depth > 64:
        raise _NotData("too deep")
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, torch.dtype, torch.Size)):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict) and type(value) is dict:
        return {k: _detached(v, depth + 1) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_detached(v, depth + 1) for v in value)
    if type(value).__module__ == "numpy":
        return value.copy()
    raise _NotData(type(value).__name__)


class _Failed:
    def __init__(self, name: str, run: str, why: str):
        self.message = (f"`{name}` comes from the experiment cell `{run}`, which {why}: run it to the "
                        "end without errors (and do not delete it), then answer from what it prints.")


class StudentNamespace(dict):
    """The names a test cell reads: its own (the checks it imports) first, Python's
    built-ins next, then the values runs left (``fixed``, copies), and anything else is
    looked up in the student's kernel."""

    def __init__(self, peer: Peer, fixed: dict | None = None):
        super().__init__()
        self.peer = peer
        self.fixed = fixed or {}

    def __missing__(self, name: str):
        if name in vars(builtins):
            raise KeyError(name)
        if name in self.fixed:
            value = self.fixed[name]
            if isinstance(value, _Failed):
                raise RunMissing(value.message)
            value = self[name] = _detached(value)
            return value
        try:
            value = self.peer.lookup(name)
        except NameError:
            raise KeyError(name) from None
        self[name] = value
        return value


def _test_outputs(test_id: str, earned: float, available: float, message: str | None) -> list:
    try:
        from .feedback import cell_outputs
    except ImportError:  # the styled block lives in grader/feedback.py
        cell_outputs = None
    if cell_outputs is not None:
        return [nbformat.from_dict(o) for o in cell_outputs(test_id, earned, available, message)]
    if message is None:
        return [nbformat.v4.new_output("display_data", data={"text/plain": f"PASS {test_id}: {earned:g} / {available:g} points"})]
    return [nbformat.v4.new_output("error", ename="AssertionError", evalue=message,
                                   traceback=[f"FAIL {test_id}: 0 / {available:g} points", message])]


class Judge:
    """Grades one notebook; ``tests`` maps a test cell's grade_id to (code, points)."""

    def __init__(self, sandbox: Sandbox | None, cell_timeout: float, notebook_timeout: float, log=None):
        self.sandbox = sandbox
        self.cell_timeout = float(cell_timeout)
        self.notebook_timeout = float(notebook_timeout)
        self.log = log
        self.kernel: Kernel | None = None
        self.listener: socket.socket | None = None
        self.sock_path = ""

    def _warn(self, text: str) -> None:
        if self.log is not None:
            self.log.warning(text)

    # ------------------------------------------------------------------ the notebook

    def run(self, nb, tests: dict[str, tuple[str, float]], folder: str | None,
            runs: dict[str, dict] | None = None) -> None:
        """Grade ``nb`` in place: every code cell gets its outputs, test cells the verdict.
        ``runs`` maps a locked experiment cell's grade_id to its instructor source and the
        names tests read from it (:func:`run_specs`)."""
        _forget_checks()
        self.open(folder)
        runs = runs or {}
        order = [c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.cells]
        for gid in sorted(runs, key=lambda g: order.index(g) if g in order else -1):
            for name in runs[gid]["names"]:  # until a run sets it, the run has not happened
                self.run_values[name] = _Failed(name, gid, "did not run")
        try:
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                self.cells[index] = cell
                try:
                    if gid in tests:
                        code, points = tests[gid]
                        cell.outputs = self._test(gid, code, points)
                        cell.execution_count = None
                    else:
                        status = self._cell(index, cell)
                        spec = runs.get(gid)
                        if spec is not None and cell.source == spec["source"]:
                            self._keep_run_values(gid, spec["names"], status)
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:  # never let one notebook stop the class
                    self._warn(f"grading error at cell {index} ({gid}): {type(exc).__name__}: {exc}")
                    text = f"the grader could not run this cell ({type(exc).__name__}); it scores 0."
                    cell.outputs = (_test_outputs(gid, 0, tests[gid][1], text) if gid in tests
                                    else [_error("GraderError", text)])
                    self._no_blame = True  # a fresh kernel next, no cell blamed
                    self._stop()
        finally:
            self.close()

    def open(self, folder: str | None = None) -> None:
        """Start a kernel whose scratch folder is a copy of ``folder``."""
        self.deadline = time.monotonic() + self.notebook_timeout
        self.scratch = Path(tempfile.mkdtemp(prefix="grader-scratch-"))
        os.chmod(self.scratch, 0o755)
        self.scratch_dir = self.scratch / "work"
        self.scratch_dir.mkdir()
        _copy_folder(folder, self.scratch_dir)
        self.executed: list[int] = []
        self._replay_source: dict[int, str] = {}
        self.cells: dict = {}
        self._no_blame = False
        self.killers: set[int] = set()
        self.restarts = 0
        self.run_values: dict = {}
        self._start()

    def close(self) -> None:
        self._stop()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def execute(self, code: str) -> "Outcome":
        """Run code in the student's kernel (a session outside a notebook: tests, benchmarks)."""
        self._ensure_kernel()
        return self.kernel.execute(code, self.cell_timeout)

    def verdict(self, gid: str, code: str) -> str | None:
        """Judge one test cell's code against the kernel's objects: None, or the message."""
        self._ensure_kernel()
        message = self._judge(gid, code)
        return None if message is None else str(message)

    def _remaining(self) -> float:
        return self.deadline - time.monotonic()

    def _start(self) -> None:
        self._stop()
        self.kernel = Kernel(self.sandbox, self.scratch_dir, self.log)
        self.kernel.start()
        self.sock_path = os.path.join(self.kernel.rundir, "judge.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.sock_path)
        os.chmod(self.sock_path, 0o666)
        self.listener.listen(1)

    def _stop(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        if self.kernel is not None:
            self.kernel.kill()
            self.kernel = None

    def _restart(self) -> None:
        """A fresh kernel with every cell run so far replayed, except those that killed one."""
        while True:
            self.restarts += 1
            if self.restarts > MAX_RESTARTS:
                raise KernelDied("the kernel died too many times")
            self._start()
            for index in self.executed:
                if index in self.killers:
                    continue
                left = self._remaining()
                if left <= 0:
                    return
                outcome = self.kernel.execute(self._replay_source[index], min(self.cell_timeout, left),
                                              collect=False)
                if outcome.status in ("died", "timeout") and not self.kernel.alive():
                    self.killers.add(index)
                    break
            else:
                return

    def _ensure_kernel(self) -> None:
        """A live kernel; one found dead was killed by the last cell it ran (``exit()``
        ends the kernel just after its cell has finished)."""
        if self.kernel is not None and self.kernel.alive():
            return
        if self._no_blame:  # killed by a test calling student code, or before a cell began: no cell to blame
            self._no_blame = False
        elif self.executed and self.executed[-1] not in self.killers:
            last = self.executed[-1]
            self.killers.add(last)
            self.cells[last].outputs.append(_error(
                "KernelDied", "the kernel ended after this cell (exit()?); the cells after it "
                "ran in a fresh kernel without it"))
        self._restart()

    def _cell(self, index: int, cell) -> str:
        """Run a cell in the kernel; its status: ok, error, timeout, died or skipped."""
        left = self._remaining()
        if left <= 0:
            cell.outputs = [_error("TimeBudgetExceeded", f"the notebook's time budget "
                                   f"({self.notebook_timeout:g} s) ran out before this cell")]
            return "skipped"
        self._ensure_kernel()
        outcome = self.kernel.execute(cell.source, min(self.cell_timeout, left))
        if outcome.status == "died" and not outcome.started:
            # Dead before it said it had started: the kernel was dying already, or this cell
            # killed it at once (``os._exit`` can end the kernel before its "busy" message
            # leaves). Blame no cell: a fresh kernel replays the earlier cells (one that
            # kills it there is found by the replay), then this cell runs once more.
            self._no_blame = True
            self._ensure_kernel()
            outcome = self.kernel.execute(cell.source, min(self.cell_timeout, self._remaining()))
        cell.outputs = outcome.outputs
        cell.execution_count = outcome.execution_count
        self._replay_source[index] = cell.source
        if outcome.status == "timeout":
            cell.outputs.append(_error("CellTimeoutError", f"the cell did not finish within "
                                       f"{min(self.cell_timeout, left):.0f} s (an endless loop?)"))
            stray = self.kernel.stray_processes()
            if stray:  # forked children go on after the interrupt: end them with the kernel
                self.kernel.kill()
                cell.outputs.append(_error("KernelDied", f"the cell left {stray} processes running "
                                           "(os.fork?); the sandbox stopped the kernel and the "
                                           "cells after it ran in a fresh kernel without it"))
        if outcome.exiting:  # exit(): ipykernel stops a moment after the reply
            self.kernel.kill()
            cell.outputs.append(_error("KernelDied", "this cell ended the kernel (exit()); the cells "
                                       "after it ran in a fresh kernel without it"))
            self.killers.add(index)
            self.executed.append(index)
            self._restart()
            return "died"
        if outcome.status == "died" or not self.kernel.alive():
            reason = self.kernel.death_reason
            if reason:
                cell.outputs.append(_error("KernelDied", f"the sandbox stopped the kernel while it ran "
                                           f"this cell: {reason}; the cells after it ran in a fresh "
                                           "kernel without it"))
            elif outcome.status == "died":
                cell.outputs.append(_error("KernelDied", "the kernel died while running this cell "
                                           "(os._exit, exit(), too much memory, or a crash); the "
                                           "cells after it ran in a fresh kernel without it"))
            self.killers.add(index)
            self.executed.append(index)
            self._restart()
            return "died"
        self.executed.append(index)
        return outcome.status

    # ------------------------------------------------------------------ test cells

    def _test(self, gid: str, code: str, points: float) -> list:
        if self._remaining() <= 0:
            return _test_outputs(gid, 0, points, f"the notebook's time budget ({self.notebook_timeout:g} s) "
                                 "ran out before this test ran.")
        try:
            self._ensure_kernel()
            message = self._judge(gid, code)
            if message is _NOT_REACHED and not self.kernel.alive():  # died just before: once more
                self._ensure_kernel()
                message = self._judge(gid, code)
        except KernelDied as exc:
            message = f"the kernel could not be started again: {exc}"
        if message is _NOT_REACHED:
            message = ("the kernel died before this test could run." if not self.kernel.alive() else
                       "your notebook did not let the grader reach its objects (was a cell still "
                       "running, or were Python's import system or IPython's input changed?).")
        return _test_outputs(gid, 0 if message else points, points, message)

    def _serving(self, limit: float):
        """Ask the kernel to serve the judge: (its connection or None, the request's id)."""
        kernel = self.kernel
        msg_id = kernel.begin(SERVE.format(path=self.sock_path), silent=True)
        conn = None
        self.listener.settimeout(0.05)
        give_up = time.monotonic() + min(CONNECT_TIMEOUT, max(limit, 1))
        while conn is None and time.monotonic() < give_up:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                if not kernel.alive() or kernel.finished(msg_id):
                    break
        if conn is None:
            self._finish(msg_id)
        return conn, msg_id

    def _keep_run_values(self, gid: str, names: list[str], status: str) -> None:
        """Copy the values a run just computed out of the kernel, for the tests that read
        them; a run that did not finish leaves its names undefined."""
        if status != "ok" or not self.kernel.alive():
            why = {"timeout": "did not finish in time", "skipped": "did not run (time budget)"}.get(
                status, "raised an error" if status == "error" else "ended the kernel")
            self.run_values.update({n: _Failed(n, gid, why) for n in names})
            return
        limit = min(self.cell_timeout, max(self._remaining(), 1.0))
        conn, msg_id = self._serving(limit)
        if conn is None:
            self.run_values.update({n: _Failed(n, gid, "could not be read back (was Python's import "
                                                "system changed?)") for n in names})
            return
        from .wire.peer import JUDGE, Peer

        peer = Peer(conn, JUDGE)
        peer.deadline = time.monotonic() + limit

        def on_deadline() -> float:
            raise TestTimeout()

        peer.on_deadline = on_deadline
        todo = list(names)
        try:
            hello, _ = peer.recv()
            if hello.get("op") != "hello":
                raise framing.WireError("no hello")
            while todo:
                name = todo[0]
                try:
                    self.run_values[name] = _detached(peer.lookup(name))
                except NameError:
                    self.run_values[name] = _Failed(name, gid, "did not define it")
                except _NotData:  # not data a student could have altered in place: read it live
                    self.run_values.pop(name, None)
                todo.pop(0)
        except (Exception, TestTimeout, framing.PeerGone, framing.WireError, framing.Deadline):
            self.run_values.update({n: _Failed(n, gid, "could not be read back") for n in todo})
        finally:
            self._hang_up(peer, conn, msg_id)

    def _hang_up(self, peer: Peer, conn, msg_id: str) -> None:
        """End a serving request; a kernel that died serving blames no cell."""
        kernel = self.kernel
        try:
            peer.deadline = time.monotonic() + INTERRUPT_GRACE
            peer.on_deadline = None
            peer.send({"op": "done"})
        except (Exception, framing.PeerGone, framing.WireError, framing.Deadline):
            pass
        conn.close()
        self._finish(msg_id)
        if not kernel.alive():
            self._no_blame = True

    def _judge(self, gid: str, code: str) -> str | None:
        limit = min(self.cell_timeout, self._remaining())
        kernel = self.kernel
        conn, msg_id = self._serving(limit)
        if conn is None:
            return _NOT_REACHED
        from .wire.peer import JUDGE, Interrupted, Peer, RemoteError

        peer = Peer(conn, JUDGE)
        interrupted = []

        def on_deadline() -> float:
            if not interrupted:
                interrupted.append(time.monotonic())
                kernel.interrupt()
                return time.monotonic() + INTERRUPT_GRACE
            raise TestTimeout()

        peer.deadline = time.monotonic() + limit
        peer.on_deadline = on_deadline
        message = None
        try:
            hello, _ = peer.recv()
            if hello.get("op") != "hello":
                raise framing.WireError("no hello")
            namespace = StudentNamespace(peer, self.run_values)
            code_obj = compile(code, f"<{gid}>", "exec")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(code_obj, {"__builtins__": builtins, "__name__": "__main__"}, namespace)
        except AssertionError as exc:
            message = str(exc) or "the check failed."
        except RunMissing as exc:
            message = str(exc)
        except (TestTimeout, Interrupted):
            message = (f"the test did not finish within {limit:.0f} s: your code is too slow "
                       "or never returns (an endless loop?).")
        except framing.PeerGone:
            reason = kernel.death_reason if kernel is not None else None
            message = (f"the sandbox stopped the kernel while this test ran your code: {reason}."
                       if reason else "the kernel died while this test ran your code (os._exit, "
                       "exit(), too much memory, or a crash).")
        except framing.WireError as exc:
            message = f"your code returned something the grader cannot read ({exc})."
        except NameError as exc:
            message = f"{exc}: run the exercise's cell first (or it raised an error there)."
        except RemoteError as exc:
            message = f"your code raised {exc}"
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
        finally:
            self._hang_up(peer, conn, msg_id)
        return _clean(message) if message is not None else None

    def _finish(self, msg_id: str) -> None:
        """Wait for the kernel's serving request to end; kill a kernel that does not."""
        kernel = self.kernel
        if kernel is None or not kernel.alive():
            return
        outcome = kernel.wait(msg_id, INTERRUPT_GRACE, collect=False)
        if outcome.status in ("timeout", "died") or not kernel.alive():
            kernel.kill()


def _error(ename: str, evalue: str):
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _clean(text: str) -> str:
    """No control characters (but newlines and tabs) in a message, at most 4000 characters."""
    text = "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())
    return text[:4000]


def _forget_checks() -> None:
    """Import the checks afresh for every notebook, so nothing one student's kernel did to
    objects the checks share reaches the next student."""
    for name in list(sys.modules):
        if name.startswith(("grader.checks", "grader.hidden")):
            del sys.modules[name]


def _copy_folder(folder: str | None, dest: Path) -> None:
    """Copy the regular files of the notebook's folder (no links, nothing large)."""
    if not folder or not os.path.isdir(folder):
        return
    for entry in os.scandir(folder):
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_size <= MAX_SCRATCH_FILE:
                shutil.copyfile(entry.path, dest / entry.name, follow_symlinks=False)
        except OSError:
            continue


# ------------------------------------------------------------------ nbgrader's step

try:
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import Execute
except ImportError:  # pragma: no cover
    Execute = object


def run_specs(tests: dict[str, tuple[str, float]], locked: dict[str, str]) -> dict[str, dict]:
    """{grade_id of a locked cell: {"source": its code, "names": what test cells read from it}}:
    the runs whose values :meth:`Judge.run` keeps for the questions. ``locked`` maps the
    instructor's locked code cells (not tests, not answers) to their code."""
    import ast

    from .notebooks import assigned_names, read_names

    read: set[str] = set()
    for code, _ in tests.values():
        try:
            read.update(read_names(ast.parse(code)))
        except SyntaxError:
            continue
    specs = {}
    for gid, source in locked.items():
        try:
            names = sorted(read & assigned_names(ast.parse(source)))
        except SyntaxError:
            continue
        if names:
            specs[gid] = {"source": source, "names": names}
    return specs


_GRADING: dict[tuple[str, str, str], tuple[dict, dict]] = {}


class JudgeExecute(Execute):
    """nbgrader's execute step, replaced: the kernel is confined and the judge decides."""

    def preprocess(self, nb, resources):
        sandbox = Sandbox(parent=self)
        if sandbox.enabled:
            sandbox.check()
        else:
            self.log.warning("grading WITHOUT a sandbox: the student's code runs with your "
                             "permissions (trusted submissions only)")
        tests, runs = self._grading(resources)
        folder = resources.get("metadata", {}).get("path")
        judge = Judge(sandbox if sandbox.enabled else None, self.timeout or 120,
                      sandbox.notebook_timeout, self.log)
        judge.run(nb, tests, folder, runs)
        return nb, resources

    def _tests(self, resources) -> dict[str, tuple[str, float]]:
        return self._grading(resources)[0]

    def _grading(self, resources) -> tuple[dict[str, tuple[str, float]], dict[str, dict]]:
        """From the gradebook (the instructor's source): the test cells, {grade_id: (code,
        points)}, and the runs whose values questions read (:func:`run_specs`). In one
        prepare or record pass (``GRADER_PHASE`` set: an nbgrader process that grades one
        assignment after its gradebook entry was made) every student's notebook has the
        same source, so it is read once per notebook name."""
        info = resources["nbgrader"]
        if os.environ.get("GRADER_PHASE"):
            key = (info["db_url"], info["assignment"], info["notebook"])
            if key not in _GRADING:
                _GRADING[key] = self._grading_from_gradebook(info)
            tests, runs = _GRADING[key]
            return dict(tests), copy.deepcopy(runs)
        return self._grading_from_gradebook(info)

    def _grading_from_gradebook(self, info) -> tuple[dict[str, tuple[str, float]], dict[str, dict]]:
        with Gradebook(info["db_url"]) as gb:
            notebook = gb.find_notebook(info["notebook"], info["assignment"])
            solutions = {c.name for c in notebook.solution_cells}
            grades = {c.name for c in notebook.grade_cells}
            sources = {c.name: c for c in notebook.source_cells}
            tests = {}
            for cell in notebook.grade_cells:
                if cell.name in solutions or cell.cell_type != "code" or cell.name not in sources:
                    continue
                tests[cell.name] = (sources[cell.name].source, float(cell.max_score))
            locked = {c.name: c.source for c in notebook.source_cells
                      if c.locked and c.cell_type == "code" and c.name not in solutions and c.name not in grades}
        return tests, run_specs(tests, locked)
