"""Where things are: the course root and its folders, and the environment nbgrader needs."""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
COURSE = ROOT / "course"
CLASSROOM = ROOT / "classroom"


def assignments() -> list[str]:
    """Assignment folder names in course order (``01-bias-variance`` ...)."""
    return sorted(p.name for p in SOLUTIONS.iterdir() if p.is_dir() and not p.name.startswith("."))


def source_notebooks(assignment: str) -> list[Path]:
    """The top-level notebooks of an assignment (nbgrader releases only these)."""
    return sorted((SOLUTIONS / assignment).glob("*.ipynb"))


def subprocess_env() -> dict:
    """The environment for nbgrader and Jupyter subprocesses: this interpreter's bin folder
    first on PATH (nbgrader runs `alembic` from PATH, so nothing needs activating), a
    non-interactive matplotlib backend and no stray warnings on stderr."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env.setdefault("MPLBACKEND", "Agg")
    env["PYTHONWARNINGS"] = "ignore"
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    # Notebooks import `regnorm` and `grader` from the course root even without an install.
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # The course's Jupyter data first: feedback pages load no MathJax from the internet.
    data = str(ROOT / "jupyter" / "data")
    env["JUPYTER_PATH"] = data + (os.pathsep + env["JUPYTER_PATH"] if env.get("JUPYTER_PATH") else "")
    return env


def private_dir(path: Path) -> Path:
    """``path`` as a folder only its owner can enter (0700): the grader's working folder is
    all that stands between the students of a shared server and the grading process."""
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.is_symlink() or not path.is_dir():
        raise SystemExit(f"{path} is not a folder (a link?); the grader works only in a real folder")
    os.chmod(path, 0o700)
    return path


def make_private(workdir: Path) -> None:
    """The working folder 0700, each folder the grader made in it 0700, each of its files
    (the gradebook, the logs, the exports) 0600. Links are left alone, never followed."""
    workdir = Path(workdir)
    private_dir(workdir)
    for entry in os.scandir(workdir):
        try:
            if entry.is_dir(follow_symlinks=False):
                os.chmod(entry.path, 0o700)
            elif entry.is_file(follow_symlinks=False):
                os.chmod(entry.path, 0o600)
        except OSError:
            continue
