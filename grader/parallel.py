"""Grade a class in parallel, on this machine or on a Dask cluster, with one gradebook.

nbgrader grades one notebook after another and its gradebook has one writer. Executing
the notebooks is what costs (seconds to minutes each); nbgrader's own bookkeeping is a
fraction of a second. So the coordinator (the ``autograde`` process) runs nbgrader three
times per assignment, and only the middle part is spread out:

1. **harvest**: ``nbgrader autograde`` with the execute step replaced by ``Harvest``.
   nbgrader itself sanitizes every submission (ClearOutput, DeduplicateIds,
   OverwriteKernelspec, OverwriteCells, CheckCellMetadata), copies the assignment's files
   next to it and registers the submission; ``Harvest`` writes down, as data, exactly what
   ``JudgeExecute`` would have been given: the sanitized notebook, the test cells' code and
   points from the gradebook, the files of the notebook's folder, the limits. Nothing runs.
2. **execute**: each task goes to a worker (a local process pool, or a Dask cluster), which
   runs ``Judge(...).run`` in its own sandbox and returns the executed notebook as JSON.
   The coordinator stores it under ``WORKDIR/executed/<key>.ipynb``; the key is a hash of
   everything the verdicts depend on (the code cells, the tests, the folder's files, the
   limits, the grader's checks), so ``--resume`` skips a notebook already executed whose
   content has not changed, and an interrupted run keeps what it graded.
3. **record**: ``nbgrader autograde`` as always, whose execute step is ``InjectExecuted``:
   it computes the same key from what nbgrader hands it and puts the stored outputs in;
   a notebook that is not stored is graded right there by ``JudgeExecute`` (the fallback).
   SaveAutoGrades writes the gradebook, so formgrader shows the grades.

Harvest and record are nbgrader's own code paths, so the sanitized notebook, the tests and
the scores cannot drift from a plain serial run; the executed notebooks are the judge's
output, carried as JSON. ``nbgrader_config.py`` picks the execute step from the
``GRADER_PHASE`` environment variable that ``grader.autograde`` sets.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .judge import MAX_SCRATCH_FILE, Judge, JudgeExecute
from .paths import ROOT
from .sandbox import Sandbox

TASKS_ENV = "GRADER_TASKS"  # harvest: the folder the tasks are written to
EXECUTED_ENV = "GRADER_EXECUTED"  # record: the folder of executed notebooks
INJECT_ONLY_ENV = "GRADER_INJECT_ONLY"  # record after Ctrl-C: never execute, skip instead


class NotExecuted(RuntimeError):
    """Record phase after an interruption: this notebook was not graded."""


# ------------------------------------------------------------------ the task, as data

def _grader_code_hash() -> str:
    """A hash of the code the verdicts depend on: a changed check re-grades on --resume."""
    h = hashlib.sha256()
    pkg = ROOT / "grader"
    for sub in ("judge.py", "kernel.py", "sandbox.py", "feedback.py", "notebooks.py", "wire", "checks", "hidden",
                "mistakes"):
        path = pkg / sub
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.exists() else []
        for f in files:
            h.update(str(f.relative_to(pkg)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


_CODE_HASH: str | None = None


def _folder_files(folder: str | None) -> dict[str, bytes]:
    """The regular files the judge would copy into the kernel's scratch folder."""
    out: dict[str, bytes] = {}
    if not folder or not os.path.isdir(folder):
        return out
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_size <= MAX_SCRATCH_FILE:
                with open(entry.path, "rb") as f:
                    out[entry.name] = f.read()
        except OSError:
            continue
    return out


def task_key(nb, tests: dict, files: dict[str, bytes], limits: dict, runs: dict | None = None) -> str:
    """What the judge's verdicts depend on. Left out: the folder's notebooks (nbgrader
    writes the graded copies there as it goes, in its own order) and nbgrader's
    ``timestamp.txt`` (the collection time, new at every run)."""
    global _CODE_HASH
    if _CODE_HASH is None:
        _CODE_HASH = _grader_code_hash()
    cells = [(c.cell_type, c.source, c.get("metadata", {}).get("nbgrader", {}).get("grade_id"))
             for c in nb.cells]
    data = {
        "cells": cells,
        "tests": {k: [v[0], float(v[1])] for k, v in sorted(tests.items())},
        "files": {n: hashlib.sha256(b).hexdigest() for n, b in files.items()
                  if not n.endswith(".ipynb") and n != "timestamp.txt"},
        "limits": limits,
        "runs": runs or {},
        "code": _CODE_HASH,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _limits(step: JudgeExecute) -> tuple[Sandbox, dict]:
    sandbox = Sandbox(parent=step)
    traits = {name: getattr(sandbox, name) for name in sorted(sandbox.trait_names(config=True))}
    return sandbox, {"cell_timeout": float(step.timeout or 120), "sandbox": traits}


class TaskRefused(ValueError):
    """A file in the tasks folder that is not a task this grader wrote: never executed."""


MAX_TASK_BYTES = 256 * 2**20  # a notebook plus its folder's files (each at most MAX_SCRATCH_FILE)


@dataclass
class Task:
    key: str
    student: str
    assignment: str
    notebook: str
    nb_json: str
    tests: dict
    files: dict
    limits: dict
    runs: dict | None = None  # the runs whose values questions read (grader.judge.run_specs)

    @property
    def label(self) -> str:
        return f"{self.student}/{self.assignment}/{self.notebook}"

    def to_json(self) -> str:
        """The task as JSON (the folder's files as base64): data, read back as data."""
        return json.dumps({
            "format": TASK_FORMAT, "key": self.key, "student": self.student,
            "assignment": self.assignment, "notebook": self.notebook, "nb_json": self.nb_json,
            "tests": {gid: [code, float(points)] for gid, (code, points) in self.tests.items()},
            "files": {name: base64.b64encode(data).decode("ascii") for name, data in self.files.items()},
            "limits": self.limits, "runs": self.runs,
        })

    @classmethod
    def from_json(cls, text: str | bytes, where: str = "task") -> "Task":
        """A task from its JSON, checked field by field, its key recomputed from its content;
        anything else raises :class:`TaskRefused` naming ``where``."""
        def refuse(why: str) -> TaskRefused:
            return TaskRefused(f"{where} is not a task written by this grader ({why}); nothing was "
                               "executed. Someone or something wrote into the grader's working folder: "
                               "check who can write there (it should be private to you) and grade again.")

        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise refuse(f"not JSON: {exc}") from None
        fields = {"format", "key", "student", "assignment", "notebook", "nb_json", "tests", "files",
                  "limits", "runs"}
        if not isinstance(data, dict) or set(data) != fields or data["format"] != TASK_FORMAT:
            raise refuse("not a task object of format " + TASK_FORMAT)
        if not all(isinstance(data[k], str) for k in ("key", "student", "assignment", "notebook", "nb_json")):
            raise refuse("a name or the notebook is not a string")
        tests, files = data["tests"], data["files"]
        if not isinstance(tests, dict) or not all(
                isinstance(v, list) and len(v) == 2 and isinstance(v[0], str)
                and isinstance(v[1], (int, float)) and not isinstance(v[1], bool) for v in tests.values()):
            raise refuse("the tests are not {grade_id: [code, points]}")
        if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()) or any(
                "/" in n or n in ("", ".", "..") for n in files):
            raise refuse("the files are not {name: base64}")
        if not isinstance(data["limits"], dict) or not (data["runs"] is None or isinstance(data["runs"], dict)):
            raise refuse("the limits or runs are not objects")
        try:
            raw = {n: base64.b64decode(v, validate=True) for n, v in files.items()}
            nb = nbformat.reads(data["nb_json"], as_version=4)
        except Exception as exc:
            raise refuse(f"unreadable content: {type(exc).__name__}") from None
        task = cls(data["key"], data["student"], data["assignment"], data["notebook"], data["nb_json"],
                   {gid: (code, float(points)) for gid, (code, points) in tests.items()}, raw,
                   data["limits"], data["runs"])
        if task_key(nb, task.tests, task.files, task.limits, task.runs) != task.key:
            raise refuse("its key does not match its content")
        return task


TASK_FORMAT = "regnorm-grader-task/1"


class Harvest(JudgeExecute):
    """The execute step of the harvest pass: write the task down, run nothing."""

    def preprocess(self, nb, resources):
        _, limits = _limits(self)
        tests, runs = self._grading(resources)
        files = _folder_files(resources.get("metadata", {}).get("path"))
        info = resources["nbgrader"]
        task = Task(task_key(nb, tests, files, limits, runs), info["student"], info["assignment"],
                    info["notebook"], nbformat.writes(nb), tests, files, limits, runs)
        out = Path(os.environ[TASKS_ENV])
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / f".{task.key}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(task.to_json())
        os.replace(tmp, out / f"{task.key}.task")
        return nb, resources


class InjectExecuted(JudgeExecute):
    """The execute step of the record pass: the stored outputs of the notebook, or the
    judge right here when it has none."""

    def preprocess(self, nb, resources):
        _, limits = _limits(self)
        tests, runs = self._grading(resources)
        files = _folder_files(resources.get("metadata", {}).get("path"))
        key = task_key(nb, tests, files, limits, runs)
        stored = Path(os.environ.get(EXECUTED_ENV, "/nonexistent")) / f"{key}.ipynb"
        if stored.exists():
            executed = nbformat.reads(stored.read_text(), as_version=4)
            if _same_cells(nb, executed):
                for cell, done in zip(nb.cells, executed.cells):
                    if cell.cell_type == "code":
                        cell.outputs = done.outputs
                        cell.execution_count = done.get("execution_count")
                return nb, resources
            self.log.warning("stored result of %s does not match; grading it here", stored.name)
        if os.environ.get(INJECT_ONLY_ENV):
            raise NotExecuted("not graded (the run was interrupted)")
        return super().preprocess(nb, resources)


def _same_cells(a, b) -> bool:
    return len(a.cells) == len(b.cells) and all(
        x.cell_type == y.cell_type and x.source == y.source for x, y in zip(a.cells, b.cells))


def load_tasks(folder: Path) -> list[Task]:
    """Every task the harvest pass wrote, read as JSON data and checked. Anything else in
    the folder (a planted pickle, a file of another name, a link) refuses the whole run with
    :class:`TaskRefused` before a single task executes."""
    tasks = []
    if not folder.exists():
        return tasks
    for path in sorted(folder.iterdir()):
        where = f"{path}"
        if path.is_symlink() or not path.is_file() or path.suffix != ".task" or path.name.startswith("."):
            raise TaskRefused(f"{where} does not belong in the tasks folder (only <key>.task files the "
                              "harvest pass wrote); nothing was executed. Someone or something wrote into "
                              "the grader's working folder: check who can write there and grade again.")
        if path.stat().st_size > MAX_TASK_BYTES:
            raise TaskRefused(f"{where} is larger than any task ({MAX_TASK_BYTES} bytes); nothing was executed.")
        task = Task.from_json(path.read_bytes(), where)
        if path.stem != task.key:
            raise TaskRefused(f"{where}: its name is not its key; nothing was executed.")
        tasks.append(task)
    return tasks


# ------------------------------------------------------------------ the worker's side

def grade_task(task: Task) -> tuple[str, str, float]:
    """Run on a worker: execute one notebook with the judge; returns (key, notebook JSON,
    seconds). Needs only the course's environment (``pip install -e .``), no shared disk."""
    start = time.monotonic()
    nb = nbformat.reads(task.nb_json, as_version=4)
    traits = dict(task.limits["sandbox"])
    sandbox = Sandbox(**traits)
    if sandbox.enabled:
        sandbox.check()
    folder = tempfile.mkdtemp(prefix="grader-task-")
    try:
        for name, data in task.files.items():
            if "/" in name or name in (".", ".."):
                continue
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)
        judge = Judge(sandbox if sandbox.enabled else None, task.limits["cell_timeout"],
                      sandbox.notebook_timeout, _Log())
        judge.run(nb, task.tests, folder, task.runs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return task.key, nbformat.writes(nb), time.monotonic() - start


def grade_task_json(text: str) -> str:
    """:func:`grade_task` with JSON in and out (the Dask path): a worker rebuilds and checks
    the task from data; the coordinator reads the reply as data (:func:`_reply`)."""
    key, nb_json, seconds = grade_task(Task.from_json(text, "the task received"))
    return json.dumps({"status": "ok", "key": key, "nb_json": nb_json, "seconds": seconds})


class _Log:
    """The judge's warnings on a worker go to its stderr (a Dask worker's log)."""

    def warning(self, text, *args):
        print("grader:", text % args if args else text, file=sys.stderr)

    info = debug = error = warning


# ------------------------------------------------------------------ the coordinator's side

@dataclass
class Outcome:
    done: int = 0
    skipped: int = 0  # already executed (--resume)
    failures: list[str] = field(default_factory=list)  # "label: why"
    interrupted: bool = False
    seconds: float = 0.0


class Progress:
    """One phase of a run (preparing, executing, recording, feedback): notebooks done /
    total, the rate and the time left at that rate. One line redrawn on a terminal; on a
    log (CI, a file) a line per notebook, or per ``every`` notebooks for a large class."""

    def __init__(self, total: int, stream=None, label="graded", phase: str = "executing", every: int = 0):
        self.total, self.done, self.failed = total, 0, 0
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.label = label
        self.phase = phase
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every = every or max(1, total // 50)
        self._shown = -1

    def rate(self) -> float:
        """Notebooks per minute so far in this phase."""
        elapsed = time.monotonic() - self.start
        return self.done / elapsed * 60 if elapsed > 0 and self.done else 0.0

    def line(self) -> str:
        rate = self.rate()
        left = (self.total - self.done) / (rate / 60) if rate else None
        width = 24
        filled = int(width * self.done / self.total) if self.total else width
        bar = "#" * filled + "." * (width - filled)
        eta = "?" if left is None else _duration(left)
        fails = f", {self.failed} failed" if self.failed else ""
        return (f"{self.phase:<10}[{bar}] {self.done}/{self.total} notebooks {self.label}, "
                f"{rate:.1f}/min, {eta} left{fails}")

    def step(self, failed: bool = False, note: str = "") -> None:
        self.done += 1
        self.failed += bool(failed)
        self._show(note)

    def update(self, done: int) -> None:
        """The phase's count as observed (notebooks an nbgrader pass has written so far)."""
        done = min(done, self.total)
        if done != self.done:
            self.done = done
            self._show()

    def _show(self, note: str = "") -> None:
        if self.tty:
            self.stream.write("\r" + self.line() + "\033[K")
            if self.done == self.total:
                self.stream.write("\n")
        elif self.done == self.total or self.done - max(self._shown, 0) >= self.every or self._shown < 0:
            self.stream.write(self.line() + (f"  ({note})" if note and self.every == 1 else "") + "\n")
            self._shown = self.done
        self.stream.flush()

    def close(self) -> None:
        self.seconds = time.monotonic() - self.start
        if not self.total:  # a phase with nothing left to do (done while the workers executed)
            return
        if self.tty and self.done != self.total:
            self.stream.write("\n")
            self.stream.flush()
        elif not self.tty and self._shown != self.done:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
        self.seconds = time.monotonic() - self.start


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def _store(executed: Path, key: str, nb_json: str) -> None:
    tmp = executed / f".{key}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(nb_json)
    os.replace(tmp, executed / f"{key}.ipynb")


def execute_tasks(tasks: list[Task], executed: Path, workers: int = 1, scheduler: str | None = None,
                  progress_stream=None, log=print, grade=None, on_done=None, tick=None,
                  procs: list | None = None) -> Outcome:
    """Execute every task not yet stored in ``executed``; each result is stored as soon as
    it arrives, so Ctrl-C (KeyboardInterrupt) keeps everything finished before it.
    ``on_done(task)`` is called (in this thread) as each task ends, stored or failed;
    ``tick()`` at least every half second while local workers run (the coordinator's
    own work meanwhile: ``grader.autograde``'s pipeline). ``procs``: local workers
    :func:`start_workers` started earlier; those not used are stopped."""
    executed.mkdir(mode=0o700, parents=True, exist_ok=True)
    outcome = Outcome()
    todo = []
    for task in tasks:
        if (executed / f"{task.key}.ipynb").exists():
            outcome.skipped += 1
        else:
            todo.append(task)
    if not todo:
        return outcome
    start = time.monotonic()
    progress = Progress(len(todo), progress_stream, "executed", phase="executing")

    def finished(task: Task, result=None, error: BaseException | None = None) -> None:
        if error is None:
            key, nb_json, _ = result
            _store(executed, key, nb_json)
            outcome.done += 1
        else:
            outcome.failures.append(f"{task.label}: {type(error).__name__}: {error}")
        progress.step(failed=error is not None, note=task.label)
        if on_done is not None:
            on_done(task)

    try:
        if scheduler:
            _run_dask(todo, scheduler, finished, grade or grade_task_json)
        elif workers <= 1:
            for task in todo:
                try:
                    result = grade_task(task)
                except KeyboardInterrupt:
                    raise
                except Exception as exc:
                    finished(task, error=exc)
                else:
                    finished(task, result)
        else:
            _run_pool(todo, workers, finished, tick, procs)
    except KeyboardInterrupt:
        outcome.interrupted = True
    finally:
        progress.close()
        outcome.seconds = time.monotonic() - start
    return outcome


WARM_UP_ENV = "GRADER_WARM_UP"  # a local worker's first job: "sandbox" or "no-sandbox"


def warm_up(sandbox: bool = True) -> None:
    """What a worker's first notebook would otherwise wait for: torch, the judge's wire and
    the checks imported, and the sandbox probed once (about 2 s). Local workers do it while
    the coordinator prepares the tasks; whatever fails here, the first task reports."""
    import importlib
    import pkgutil

    try:
        from . import checks
        from .wire import peer  # noqa: F401  (imports torch)

        for info in pkgutil.walk_packages(checks.__path__, checks.__name__ + "."):
            importlib.import_module(info.name)
        if sandbox:
            Sandbox().check()
    except Exception:  # noqa: BLE001
        pass


def start_workers(count: int, sandbox: bool = True) -> list:
    """``count`` local worker processes (``python -m grader.parallel``), started now so that
    they warm up (:func:`warm_up`) while the coordinator prepares; :func:`execute_tasks`
    takes them (``procs``), :func:`stop_workers` ends any left."""
    import subprocess

    from .paths import subprocess_env

    env = subprocess_env()
    # Each kernel's torch takes every core by default: N kernels on C cores would fight
    # over them. Give each worker (its kernel and its judge) C // N threads instead.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, str(max(1, _cores() // max(1, count))))
    env[WARM_UP_ENV] = "sandbox" if sandbox else "no-sandbox"
    procs = []
    try:
        for _ in range(count):
            procs.append(subprocess.Popen([sys.executable, "-m", "grader.parallel"], cwd=ROOT, env=env,
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE))
    except BaseException:
        stop_workers(procs)
        raise
    return procs


def stop_workers(procs: list, timeout: float = 30) -> None:
    """End local workers: no more tasks (stdin closed), then wait, or kill after ``timeout``."""
    import subprocess

    for proc in procs:
        try:
            proc.stdin.close()
        except OSError:
            pass
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        try:
            proc.stdout.close()
        except OSError:
            pass


def _run_pool(todo: list[Task], workers: int, finished, tick=None, procs: list | None = None) -> None:
    """Local workers: ``python -m grader.parallel`` processes, each grading one notebook
    after another (the judge and the checks are imported once per worker). Plain
    subprocesses rather than multiprocessing: nothing of the coordinator is inherited or
    re-imported, and a script calling ``autograde()`` needs no ``__main__`` guard."""
    import queue
    import subprocess
    import threading

    started, procs = list(procs or []), []
    jobs: queue.Queue = queue.Queue()
    for task in todo:
        jobs.put(task)
    results: queue.Queue = queue.Queue()
    stop = threading.Event()

    def drive(proc: subprocess.Popen) -> None:
        while not stop.is_set():
            try:
                task = jobs.get_nowait()
            except queue.Empty:
                break
            try:
                _send(proc.stdin, task.to_json())
                reply = _reply(_receive(proc.stdout), task)
            except (OSError, EOFError, ValueError) as exc:
                results.put((task, None, RuntimeError(f"the worker process ended ({exc or 'no reply'})")))
                return
            results.put((task, reply, None) if not isinstance(reply, str) else (task, None, RuntimeError(reply)))
        try:
            proc.stdin.close()
        except OSError:
            pass

    threads = []
    count = min(workers, len(todo))
    if started:  # warmed up while the coordinator prepared; the ones not needed end
        procs.extend(started)
        for proc in started[count:]:
            try:
                proc.stdin.close()
            except OSError:
                pass
    else:
        procs.extend(start_workers(count, sandbox=bool(todo[0].limits.get("sandbox", {}).get("enabled", True))))
    for proc in procs[:count]:
        thread = threading.Thread(target=drive, args=(proc,), daemon=True)
        thread.start()
        threads.append(thread)
    try:
        received = 0
        while received < len(todo):
            try:
                task, value, error = results.get(timeout=0.5)
            except queue.Empty:
                if not any(t.is_alive() for t in threads) and results.empty():
                    break
                if tick is not None:
                    tick()
                continue
            received += 1
            finished(task, value, error)
    except KeyboardInterrupt:
        stop.set()
        for proc in procs:  # each judge stops and kills its kernel
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGINT)
                except OSError:
                    pass
        raise
    finally:
        stop.set()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


# The local worker protocol: length-prefixed UTF-8 JSON both ways, never pickle. In: a
# task (Task.to_json). Out: {"status": "ok", "key", "nb_json", "seconds"} or
# {"status": "error", "message"}.
MAX_MESSAGE = 2 * MAX_TASK_BYTES


def _send(stream, text: str) -> None:
    data = text.encode("utf-8")
    stream.write(len(data).to_bytes(8, "big") + data)
    stream.flush()


def _receive(stream) -> bytes:
    header = stream.read(8)
    if len(header) < 8:
        raise EOFError
    size = int.from_bytes(header, "big")
    if size > MAX_MESSAGE:
        raise ValueError(f"a message of {size} bytes (at most {MAX_MESSAGE})")
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return data


def _reply(text: str | bytes, task: Task):
    """A worker's reply as (key, notebook JSON, seconds), or the error message (str)."""
    data = json.loads(text)  # bytes that are not UTF-8 JSON: ValueError
    if not isinstance(data, dict):
        raise ValueError("a reply that is not a JSON object")
    if data.get("status") == "error" and isinstance(data.get("message"), str):
        return data["message"]
    if (data.get("status") != "ok" or data.get("key") != task.key or not isinstance(data.get("nb_json"), str)
            or not isinstance(data.get("seconds"), (int, float))):
        raise ValueError("a reply that is not a result of this task")
    return data["key"], data["nb_json"], float(data["seconds"])


def serve() -> None:
    """A local worker: tasks in on stdin, results out on the original stdout; everything
    else (the judge's warnings, a kernel's stray output) goes to stderr."""
    proto = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer
    try:
        if os.environ.get(WARM_UP_ENV):
            warm_up(os.environ[WARM_UP_ENV] == "sandbox")
        while True:
            try:
                text = _receive(inp)
            except EOFError:
                return
            try:
                key, nb_json, seconds = grade_task(Task.from_json(text, "the task received"))
                reply = {"status": "ok", "key": key, "nb_json": nb_json, "seconds": seconds}
            except Exception as exc:
                reply = {"status": "error", "message": f"{type(exc).__name__}: {exc}"}
            _send(proto, json.dumps(reply))
    except KeyboardInterrupt:
        return


def _run_dask(todo: list[Task], scheduler: str, finished, grade=None) -> None:
    """``grade``: what a worker runs on a task's JSON (:func:`grade_task_json`; a benchmark
    passes a stub that returns stored results, to measure the coordinator alone)."""
    grade = grade or grade_task_json
    try:
        from distributed import Client, as_completed
    except ImportError:  # pragma: no cover
        raise SystemExit("--scheduler needs dask's `distributed` package: pip install distributed")
    with Client(scheduler, timeout="30s") as client:
        futures = {}
        for task in todo:
            # pure=False: a resubmitted notebook runs again; retries=1: a worker lost
            # mid-task (node preempted) is replaced by another one.
            fut = client.submit(grade, task.to_json(), key=f"grade-{task.key[:16]}-{time.time_ns()}",
                                pure=False, retries=1)
            futures[fut.key] = (fut, task)
        try:
            for fut in as_completed([f for f, _ in futures.values()]):
                task = futures[fut.key][1]
                if fut.status == "finished":
                    try:
                        reply = _reply(fut.result(), task)
                    except (ValueError, TypeError) as exc:
                        finished(task, error=exc)
                    else:
                        finished(task, reply)
                else:
                    try:
                        fut.result()
                    except Exception as exc:
                        finished(task, error=exc)
        except KeyboardInterrupt:
            client.cancel([f for f, _ in futures.values()])
            raise


if __name__ == "__main__":
    serve()
