"""Throughput of grading a whole class: plain nbgrader, this grader with 1 and N workers.

A generated class (``--students`` per assignment, cycling through complete, partial,
typical mistakes, untouched and broken submissions; full notebooks, experiments included)
is graded in one run each by
  (1) plain ``nbgrader autograde``: its own execute step, serially (GRADER_PLAIN_NBGRADER=1);
  (2) this grader, ``--workers 1`` (sandboxed kernels, the judge; harvest/execute/record);
  (3) this grader, ``--workers N`` for each N of ``--workers``.
It prints notebooks per minute and the ratios to plain nbgrader and to 1 worker, and
checks that (2) and (3) give the same scores. Target on 2 cores: 2 workers >= 1.7x plain.

    .venv/bin/python benchmarks/bench_class.py                         # 24 submissions
    .venv/bin/python benchmarks/bench_class.py --students 4 --assignments 03-dropout --workers 2
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grader import submissions  # noqa: E402
from grader.mistakes import demo_mistakes  # noqa: E402
from grader.paths import source_notebooks  # noqa: E402

TARGET = 1.7  # 2 workers / plain nbgrader, on 2 cores


def build(folder: Path, assignments: list[str], students: int) -> int:
    count = 0
    for assignment in assignments:
        for source in source_notebooks(assignment):
            name = source.stem
            solutions = submissions.solution_sources(assignment, name)
            first = next(iter(solutions))
            kinds = [
                lambda: submissions.complete(assignment, name),
                lambda: submissions.partial(assignment, name),
                lambda: submissions.with_mistakes(assignment, name, list(demo_mistakes(assignment).values())),
                lambda: submissions.complete(assignment, name),
                lambda: submissions.untouched(assignment, name),
                lambda: submissions.fill(assignment, name, {**solutions, first: "def broken(:\n    pass"}),
            ]
            for i in range(students):
                nb = distinct(kinds[i % len(kinds)](), f"s{i:03d}")
                submissions.write(nb, folder / f"s{i:03d}" / assignment / f"{name}.ipynb")
                count += 1
    return count


def distinct(nb, student: str):
    """Every submission different: the grader executes identical notebooks once (the task
    key is a hash of the content), so a class of copies would measure that saving instead
    of the grading. A comment naming the student ends the first answer cell."""
    from grader import notebooks

    cell = next(c for c in nb.cells if notebooks.is_solution(c))
    cell.source = cell.source.rstrip("\n") + f"\n# submitted by {student}"
    return nb


def run(subs: Path, work: Path, workers: int, plain: bool = False):
    from grader.autograde import autograde

    if plain:
        os.environ["GRADER_PLAIN_NBGRADER"] = "1"
    try:
        start = time.perf_counter()
        results = autograde(subs, work, feedback=False, workers=0 if plain else workers, log=lambda m: None,
                            progress_stream=open(os.devnull, "w"))
        seconds = time.perf_counter() - start
    finally:
        os.environ.pop("GRADER_PLAIN_NBGRADER", None)
    return seconds, {(r.student, r.assignment, r.notebook): r.score for r in results}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=12, help="submissions per notebook")
    parser.add_argument("--assignments", nargs="*", default=["03-dropout", "02-weight-decay"])
    parser.add_argument("--workers", nargs="*", type=int, default=[2])
    parser.add_argument("--no-plain", action="store_true", help="skip plain nbgrader")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n = build(tmp / "subs", args.assignments, args.students)
        print(f"class: {n} notebooks ({args.students} students x {', '.join(args.assignments)}); "
              f"{os.cpu_count()} cores")
        rows = []
        if not args.no_plain:
            rows.append(("plain nbgrader, serial", *run(tmp / "subs", tmp / "plain", 0, plain=True)))
        for workers in [1, *[w for w in args.workers if w != 1]]:
            rows.append((f"this grader, {workers} worker(s)", *run(tmp / "subs", tmp / f"w{workers}", workers)))
    base = rows[0][1] if not args.no_plain else None
    one = next(s for label, s, _ in rows if label.endswith(" 1 worker(s)"))
    print(f"{'run':<30}{'seconds':>9}{'notebooks/min':>15}{'x plain':>9}{'x 1 worker':>12}")
    for label, seconds, _ in rows:
        print(f"{label:<30}{seconds:>9.1f}{n / seconds * 60:>15.1f}"
              f"{(base / seconds if base else float('nan')):>9.2f}{one / seconds:>12.2f}")
    ours = [scores for label, _, scores in rows if label.startswith("this grader")]
    same = all(s == ours[0] for s in ours)
    print("scores of every worker count identical:", same)
    ok = same
    two = next((s for label, s, _ in rows if label.endswith(" 2 worker(s)")), None)
    if base and two:
        ratio = base / two
        print(f"2 workers / plain nbgrader = {ratio:.2f} (target >= {TARGET})")
        ok &= ratio >= TARGET
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
