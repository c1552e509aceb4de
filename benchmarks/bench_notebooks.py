"""Time every solution notebook, top to bottom, and what grading it costs, side by side.

For each notebook, a completed submission is
  (1) executed bare with `jupyter nbconvert --execute`;
  (2) autograded by plain nbgrader: its own execute step, the kernel unconfined, the test
      cells run inside the student's kernel (the alternative this course replaces);
  (3) autograded by this course's pipeline: the kernel in a bubblewrap sandbox, the test
      cells judged outside it (grader.judge).
(2) and (3) run alternately, ``--repeat`` times each, in one process, so that both see
the same machine; the medians are compared (gradebook set-up excluded from both).

    make bench                                  # every notebook once
    .venv/bin/python benchmarks/bench_notebooks.py 03-dropout --repeat 5
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grader import submissions  # noqa: E402
from grader.collect import collect  # noqa: E402
from grader.nbgrader_apps import course_dirs, nbgrader  # noqa: E402
from grader.paths import assignments, source_notebooks, subprocess_env  # noqa: E402

# Seconds, top to bottom on 2 CPU cores (the issues' budgets).
BUDGET = {"01-bias-variance": 20, "02-weight-decay": 30, "03-dropout": 20, "04-batchnorm": 45, "05-norm-layers": 45,
          "06-transformer-norms": 45, "07-beyond-penalties": 45}
OVERHEAD = 1.3  # secure autograde / plain nbgrader autograde


def bare(path: Path) -> float:
    start = time.perf_counter()
    subprocess.run([os.path.join(os.path.dirname(sys.executable), "jupyter"), "nbconvert", "--to", "notebook",
                    "--execute", "--ExecutePreprocessor.timeout=600", "--output", str(path.with_suffix(".out.ipynb")),
                    str(path)], check=True, env=subprocess_env(), capture_output=True)
    return time.perf_counter() - start


def autograded(assignment: str, path: Path, tmp: Path, plain: bool) -> tuple[float, float]:
    """(seconds, score) of one autograde run; ``plain`` = nbgrader's own execute step."""
    from nbgrader.api import Gradebook

    subs = tmp / "subs" / "bench" / assignment
    subs.mkdir(parents=True, exist_ok=True)
    (subs / path.name).write_bytes(path.read_bytes())
    work = tmp / ("plain" if plain else "secure")
    collect(tmp / "subs", work, log=lambda m: None)
    nbgrader("generate_assignment", assignment, "--force", *course_dirs(work))
    if plain:
        os.environ["GRADER_PLAIN_NBGRADER"] = "1"
    try:
        start = time.perf_counter()
        nbgrader("autograde", assignment, "--force", *course_dirs(work))
        seconds = time.perf_counter() - start
    finally:
        os.environ.pop("GRADER_PLAIN_NBGRADER", None)
    with Gradebook(f"sqlite:///{work / 'gradebook.db'}") as gb:
        score = gb.find_submission(assignment, "bench").score
    return seconds, score


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*")
    parser.add_argument("--repeat", type=int, default=1, help="autograde runs of each kind per notebook")
    args = parser.parse_args()
    print(f"{'notebook':<30}{'bare':>7}{'nbgrader':>10}{'secure':>8}{'secure/nbgrader':>17}"
          f"{'secure/bare':>13}{'budget':>8}  verdict   (seconds; medians of {args.repeat})")
    ok = True
    for assignment in args.assignments or assignments():
        for source in source_notebooks(assignment):
            with tempfile.TemporaryDirectory() as tmp:
                tmp = Path(tmp)
                path = submissions.write(submissions.complete(assignment, source.stem), tmp / source.name)
                t_bare = bare(path)
                plain, secure, scores = [], [], set()
                for _ in range(args.repeat):
                    for is_plain, times in ((True, plain), (False, secure)):
                        seconds, score = autograded(assignment, path, tmp, is_plain)
                        times.append(seconds)
                        scores.add(score)
            t_plain, t_secure = statistics.median(plain), statistics.median(secure)
            budget = BUDGET.get(assignment, 30)
            good = t_bare <= budget and t_secure <= OVERHEAD * t_plain and len(scores) == 1
            ok &= good
            print(f"{assignment + '/' + source.name:<30}{t_bare:>7.1f}{t_plain:>10.1f}{t_secure:>8.1f}"
                  f"{t_secure / t_plain:>17.2f}{t_secure / t_bare:>13.2f}{budget:>8}  "
                  f"{'ok' if good else 'OVER'}   scores {sorted(scores)}")
            if args.repeat > 1:
                print(f"{'':<30}runs: nbgrader {[round(t, 1) for t in plain]}, secure {[round(t, 1) for t in secure]}")
    print(f"(bare within the notebook's budget; secure autograde at most {OVERHEAD}x plain nbgrader's; "
          "both must give the same score)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
