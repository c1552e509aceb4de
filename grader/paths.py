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
