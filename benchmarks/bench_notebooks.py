"""Time every solution notebook, top to bottom, and the autograder's overhead.

For each notebook: (1) the completed submission executed bare with
`jupyter nbconvert --execute`, (2) the same submission autograded by nbgrader alone
(one student; gradebook set-up excluded). Prints both, the ratio, and each notebook's
budget. Run it on an otherwise idle machine: `make bench`.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grader import submissions  # noqa: E402
from grader.autograde import _dirs, collect  # noqa: E402
from grader.paths import assignments, source_notebooks, subprocess_env  # noqa: E402
from grader.release import nbgrader  # noqa: E402

# Seconds, top to bottom on 2 CPU cores (the issues' budgets).
BUDGET = {"01-bias-variance": 20, "02-weight-decay": 30, "03-dropout": 20, "04-batchnorm": 45, "05-norm-layers": 45}
OVERHEAD = 1.3  # autograde / bare execution


def bare(path: Path) -> float:
    start = time.perf_counter()
    subprocess.run([os.path.join(os.path.dirname(sys.executable), "jupyter"), "nbconvert", "--to", "notebook",
                    "--execute", "--ExecutePreprocessor.timeout=600", "--output", str(path.with_suffix(".out.ipynb")),
                    str(path)], check=True, env=subprocess_env(), capture_output=True)
    return time.perf_counter() - start


def autograded(assignment: str, path: Path, tmp: Path) -> float:
    subs = tmp / "subs" / "bench" / assignment
    subs.mkdir(parents=True, exist_ok=True)
    (subs / path.name).write_bytes(path.read_bytes())
    work = tmp / "work"
    collect(tmp / "subs", work)
    nbgrader("generate_assignment", assignment, "--force", *_dirs(work))
    start = time.perf_counter()
    nbgrader("autograde", assignment, "--force", *_dirs(work))
    return time.perf_counter() - start


def main() -> int:
    only = sys.argv[1:] or assignments()
    print(f"{'notebook':<34}{'bare (s)':>10}{'autograde (s)':>15}{'ratio':>8}{'budget (s)':>12}  verdict")
    ok = True
    for assignment in only:
        for source in source_notebooks(assignment):
            with tempfile.TemporaryDirectory() as tmp:
                tmp = Path(tmp)
                path = submissions.write(submissions.complete(assignment, source.stem), tmp / source.name)
                t_bare = bare(path)
                t_auto = autograded(assignment, path, tmp)
            budget = BUDGET.get(assignment, 30)
            good = t_bare <= budget and t_auto <= OVERHEAD * t_bare
            ok &= good
            print(f"{assignment + '/' + source.name:<34}{t_bare:>10.1f}{t_auto:>15.1f}{t_auto / t_bare:>8.2f}"
                  f"{budget:>12}  {'ok' if good else 'OVER BUDGET'}")
    print(f"(budgets: bare execution within the notebook's budget; autograde at most {OVERHEAD}x bare)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
