"""Running nbgrader's apps (generate_assignment, autograde, generate_feedback, export)
as subprocesses from the course root, with this interpreter and its environment, through
``grader.nbgrader_main`` (nbgrader's command line, started faster, with fewer gradebook
transactions: ``grader.speedups``).

Inside :func:`warm_passes` (a grading run), a pass is given to a process started earlier
that has already imported nbgrader (0.6 s of every pass) and waits for its arguments."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from .paths import ROOT, subprocess_env


WAIT_FOR_ARGUMENTS = "--wait-for-arguments"
PLAIN_ENV = "GRADER_PLAIN_NBGRADER"  # plain nbgrader, the benchmarks' alternative: its own processes


def plain() -> bool:
    """GRADER_PLAIN_NBGRADER=1 (``benchmarks/``): nbgrader as it comes, to compare with: its
    own execute step (``nbgrader_config.py``), ``python -m nbgrader`` for every pass (none of
    ``grader.speedups``), one process per pass, none started ahead."""
    return bool(os.environ.get(PLAIN_ENV))


def _module() -> str:
    return "nbgrader" if plain() else "grader.nbgrader_main"


class _Warm:
    """An ``nbgrader_main`` process that has imported nbgrader and reads one line from its
    standard input: the JSON of the arguments and environment of the pass to run (an
    empty line, or the end of the input, and it exits)."""

    def __init__(self):
        self.out = tempfile.TemporaryFile("w+")
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "grader.nbgrader_main", WAIT_FOR_ARGUMENTS],
                                         cwd=ROOT, env=subprocess_env(), text=True, stdin=subprocess.PIPE,
                                         stdout=self.out, stderr=subprocess.STDOUT)
        except BaseException:
            self.out.close()
            raise

    def run(self, args: list[str], env: dict | None):
        try:
            self.proc.stdin.write(json.dumps({"args": args, "env": env or {}}) + "\n")
            self.proc.stdin.close()
        except OSError:  # it died meanwhile: the caller starts a process of its own
            self.cancel()
            return None
        return self.proc, self.out

    def cancel(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.out.close()


class _WarmPool:
    """Processes started ahead (:meth:`prestart`) and handed out (:meth:`take`)."""

    def __init__(self):
        self.ready, self.starting, self.closed, self.threads = [], 0, False, []
        self.lock = threading.Condition()

    def prestart(self, count: int) -> None:
        """Have ``count`` processes ready or starting (started in threads: no wait)."""
        def start():
            warm = _Warm()
            with self.lock:
                self.starting -= 1
                self.lock.notify_all()
                if not self.closed:
                    self.ready.append(warm)
                    return
            warm.cancel()

        with self.lock:
            missing = count - len(self.ready) - self.starting
            self.starting += max(0, missing)
        for _ in range(missing):
            thread = threading.Thread(target=start, daemon=True)
            self.threads.append(thread)
            thread.start()

    def take(self) -> _Warm | None:
        """A ready process; one still starting is waited for (it is ready sooner than a
        new one); None if none is ready or starting."""
        with self.lock:
            self.lock.wait_for(lambda: self.ready or not self.starting, timeout=30)
            return self.ready.pop(0) if self.ready else None

    def close(self) -> None:
        """Stop the processes not used; those still starting stop as they start (waited
        for: none outlives the run)."""
        with self.lock:
            self.closed = True
            ready, self.ready = self.ready, []
        for warm in ready:
            warm.cancel()
        for thread in self.threads:
            thread.join(timeout=60)


_pool: _WarmPool | None = None


@contextlib.contextmanager
def warm_passes(count: int = 2):
    """In this block, nbgrader passes start from processes that imported nbgrader
    beforehand: ``count`` are started now, more by :func:`prestart` (where cores are idle
    or busy for long anyway: while the submissions are collected, while the workers
    execute); a pass with none ready or starting starts as usual."""
    global _pool
    if _pool is not None:  # nested: the outer pool serves
        yield
        return
    _pool = _WarmPool()
    _pool.prestart(count)
    try:
        yield
    finally:
        pool, _pool = _pool, None
        pool.close()


def prestart(count: int) -> None:
    """Inside :func:`warm_passes`: have ``count`` processes ready for the next passes."""
    if _pool is not None and count > 0:
        _pool.prestart(count)


def nbgrader(*args: str, check: bool = True, capture: bool = True,
             env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``nbgrader ARGS`` from the course root with this interpreter; ``env`` adds
    variables (``GRADER_PHASE`` ...) to the usual environment."""
    if _pool is not None and capture and not plain():  # a process started ahead
        done = nbgrader_many([list(args)], env=env)[0]
        if check:
            done.check_returncode()
        return done
    return subprocess.run(
        [sys.executable, "-m", _module(), *args, "--log-level=WARN"],
        cwd=ROOT, env={**subprocess_env(), **(env or {})}, check=check, text=True,
        stdout=subprocess.PIPE if capture else None, stderr=subprocess.STDOUT if capture else None,
    )


def nbgrader_watched(*args: str, env: dict | None = None, progress=None, count=None,
                     poll: float = 0.5) -> subprocess.CompletedProcess:
    """:func:`nbgrader`, while ``progress.update(count())`` follows what the pass has
    written so far (its tasks, autograded notebooks, feedback pages): the phase's progress."""
    return nbgrader_many([list(args)], env=env, progress=progress, count=count, poll=poll)[0]


def nbgrader_start(args: list[str], env: dict | None = None):
    """Start ``nbgrader ARGS`` without waiting: (the process, the temporary file that
    receives its output)."""
    warm = _pool.take() if _pool is not None and not plain() else None
    if warm is not None:
        started = warm.run([*args, "--log-level=WARN"], env)
        if started is not None:
            return started
    out = tempfile.TemporaryFile("w+")
    try:
        proc = subprocess.Popen([sys.executable, "-m", _module(), *args, "--log-level=WARN"],
                                cwd=ROOT, env={**subprocess_env(), **(env or {})}, text=True,
                                stdout=out, stderr=subprocess.STDOUT)
    except BaseException:
        out.close()
        raise
    return proc, out


def nbgrader_many(arglists: list[list[str]], env: dict | None = None, progress=None, count=None,
                  poll: float = 0.5) -> list[subprocess.CompletedProcess]:
    """Several nbgrader runs at once (a process pool for the passes that only read the
    gradebook, such as feedback over disjoint groups of students), with the phase's
    progress followed as in :func:`nbgrader_watched`."""
    outs, procs = [], []
    try:
        for args in arglists:
            proc, out = nbgrader_start(args, env)
            outs.append(out)
            procs.append(proc)
        while any(proc.poll() is None for proc in procs):
            try:
                next(p for p in procs if p.poll() is None).wait(timeout=poll)
            except subprocess.TimeoutExpired:
                pass
            if progress is not None and count is not None:
                progress.update(count())
        if progress is not None and count is not None:
            progress.update(count())
        done = []
        for proc, out in zip(procs, outs):
            out.seek(0)
            done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), None))
        return done
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for out in outs:
            out.close()


def configured_db_url() -> str:
    """The gradebook ``nbgrader_config.py`` names (``GRADER_DB_URL`` overrides it)."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    return str(config.CourseDirectory.db_url)


def gradebook_url(workdir: Path) -> str:
    """Where a run's grades go: a database server named in ``nbgrader_config.py``
    (PostgreSQL, MySQL) is used as is, so formgrader shows the grades; an SQLite gradebook
    lives in the run's working folder (``classroom/gradebook.db`` for the real class)."""
    url = configured_db_url()
    if url and not url.startswith("sqlite"):
        return url
    return f"sqlite:///{Path(workdir) / 'gradebook.db'}"


def course_dirs(workdir: Path, db_url: str | None = None) -> list[str]:
    """nbgrader options that put a run's folders and gradebook under ``workdir``."""
    return [
        f"--CourseDirectory.submitted_directory={workdir / 'submitted'}",
        f"--CourseDirectory.autograded_directory={workdir / 'autograded'}",
        f"--CourseDirectory.feedback_directory={workdir / 'feedback'}",
        f"--CourseDirectory.release_directory={workdir / 'release'}",
        f"--CourseDirectory.db_url={db_url or gradebook_url(workdir)}",
    ]
