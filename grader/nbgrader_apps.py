"""Running nbgrader's apps (generate_assignment, autograde, generate_feedback, export)
as subprocesses from the course root, with this interpreter and its environment."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .paths import ROOT, subprocess_env


def nbgrader(*args: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess:
    """Run ``nbgrader ARGS`` from the course root with this interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "nbgrader", *args, "--log-level=WARN"],
        cwd=ROOT, env=subprocess_env(), check=check, text=True,
        stdout=subprocess.PIPE if capture else None, stderr=subprocess.STDOUT if capture else None,
    )


def course_dirs(workdir: Path) -> list[str]:
    """nbgrader options that put a run's folders and gradebook under ``workdir``."""
    return [
        f"--CourseDirectory.submitted_directory={workdir / 'submitted'}",
        f"--CourseDirectory.autograded_directory={workdir / 'autograded'}",
        f"--CourseDirectory.feedback_directory={workdir / 'feedback'}",
        f"--CourseDirectory.release_directory={workdir / 'release'}",
        f"--CourseDirectory.db_url=sqlite:///{workdir / 'gradebook.db'}",
    ]
