"""Generate the student release (``course/``) from the instructor source (``solutions/``)
with real nbgrader, one assignment at a time."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .nbgrader_apps import nbgrader
from .paths import COURSE, assignments


NOTICE = """# The course notebooks (generated)

Open these with `make lab` from the repository root. Each notebook's `# YOUR CODE HERE`
cells are yours to fill in; `python -m grader check <notebook>` grades one as the
instructor's autograder will.

Course maintainers: every file here is generated from `solutions/` by `make release`
(nbgrader generate_assignment) and must not be edited by hand; `make test` fails when
this folder differs from a fresh release.
"""


def generate(dest: Path, only: list[str] | None = None) -> list[Path]:
    """Write the release of every assignment (or ``only`` these) under ``dest``."""
    dest = Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "README.md").write_text(NOTICE)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for assignment in only or assignments():
            result = nbgrader(
                "generate_assignment", assignment, "--force", "--no-db",
                f"--CourseDirectory.release_directory={dest}",
                f"--CourseDirectory.db_url=sqlite:///{tmp}/release.db",
                check=False,
            )
            if result.returncode != 0:
                raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{result.stdout}")
            written.extend(sorted((dest / assignment).glob("*.ipynb")))
    return written


def release(only: list[str] | None = None) -> list[Path]:
    """Regenerate ``course/`` in place; assignments removed from solutions/ disappear."""
    targets = only or assignments()
    for assignment in targets:
        shutil.rmtree(COURSE / assignment, ignore_errors=True)
    if not only:
        for stale in COURSE.glob("*"):
            if stale.is_dir() and stale.name not in targets:
                shutil.rmtree(stale)
    COURSE.mkdir(exist_ok=True)
    return generate(COURSE, targets)
