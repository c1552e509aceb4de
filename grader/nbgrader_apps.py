"""Running nbgrader's apps (generate_assignment, autograde, generate_feedback, export)
as subprocesses from the course root, with this interpreter and its environment, through
``grader.nbgrader_main`` (nbgrader's command line, started faster, with fewer gradebook
transactions: ``grader.speedups``)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .paths import ROOT, subprocess_env


def nbgrader(*args: str, check: bool = True, capture: bool = True,
             env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``nbgrader ARGS`` from the course root with this interpreter; ``env`` adds
    variables (``GRADER_PHASE`` ...) to the usual environment."""
    return subprocess.run(
        [sys.executable, "-m", "grader.nbgrader_main", *args, "--log-level=WARN"],
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
    import tempfile

    out = tempfile.TemporaryFile("w+")
    try:
        proc = subprocess.Popen([sys.executable, "-m", "grader.nbgrader_main", *args, "--log-level=WARN"],
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
