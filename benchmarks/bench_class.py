"""Throughput of grading a whole class: plain nbgrader, this grader with 1 and N workers.

A generated class (``--students`` per assignment, cycling through complete, partial,
typical mistakes, untouched and broken submissions; full notebooks, experiments included)
is graded in one run each by
  (1) plain nbgrader: ``python -m nbgrader autograde``, ``generate_feedback`` and ``export``,
      one process per pass, its own execute step, serially (GRADER_PLAIN_NBGRADER=1);
  (2) this grader, ``--workers 1`` (sandboxed kernels, the judge; harvest/execute/record);
  (3) this grader, ``--workers N`` for each N of ``--workers``.
  (4) the last of these again with ``--resume``: nothing is left to execute, so its time is
      the coordinator's serial cost (nbgrader's prepare and record passes, feedback, export).
Every submission is distinct (see :func:`distinct`). It prints notebooks per minute, the
ratios to plain nbgrader and to 1 worker, the time of each phase, the load average before
and after each run, and checks that (2) and (3) give the same scores. Targets on 2 cores:
2 workers >= 2x plain and >= 1.8x 1 worker; the serial cost <= 0.2 s per notebook plus a
fixed start, for a class of 32 or more.

    .venv/bin/python benchmarks/bench_class.py                         # 24 submissions
    .venv/bin/python benchmarks/bench_class.py --students 32 --assignments 03-dropout --no-plain --no-one
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

TARGET = 2.0  # 2 workers / plain nbgrader, on 2 cores
TARGET_ONE = 1.8  # 2 workers / 1 worker
TARGET_SERIAL = 0.2  # seconds per notebook of the --resume run (plus a fixed start)


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


def run(subs: Path, work: Path, workers: int, plain: bool = False, resume: bool = False, feedback: bool = False):
    from grader.autograde import autograde

    if plain:
        os.environ["GRADER_PLAIN_NBGRADER"] = "1"
    timings: dict = {}
    load = os.getloadavg()[0]
    try:
        start = time.perf_counter()
        results = autograde(subs, work, feedback=feedback, workers=0 if plain else workers, log=lambda m: None,
                            progress_stream=open(os.devnull, "w"), resume=resume, timings=timings)
        seconds = time.perf_counter() - start
    finally:
        os.environ.pop("GRADER_PLAIN_NBGRADER", None)
    timings["load"] = (load, os.getloadavg()[0])
    return seconds, {(r.student, r.assignment, r.notebook): r.score for r in results}, timings


def _phases(timings: dict) -> str:
    parts = [f"{k} {timings[k]:.1f}" for k in ("preparing", "executing", "recording", "feedback", "reporting")
             if k in timings]
    return ", ".join(parts) + " s; load {:.1f} -> {:.1f}".format(*timings["load"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=12, help="submissions per notebook")
    parser.add_argument("--assignments", nargs="*", default=["03-dropout", "02-weight-decay"])
    parser.add_argument("--workers", nargs="*", type=int, default=[2])
    parser.add_argument("--no-plain", action="store_true", help="skip plain nbgrader")
    parser.add_argument("--no-one", action="store_true", help="skip the 1-worker run (unless in --workers)")
    parser.add_argument("--feedback", action="store_true", help="write the feedback pages too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n = build(tmp / "subs", args.assignments, args.students)
        print(f"class: {n} distinct notebooks ({args.students} students x {', '.join(args.assignments)}); "
              f"{os.cpu_count()} cores; load {os.getloadavg()[0]:.1f}")
        rows = []
        if not args.no_plain:
            rows.append(("plain nbgrader, serial", *run(tmp / "subs", tmp / "plain", 0, plain=True,
                                                         feedback=args.feedback)))
        counts = ([] if args.no_one else [1]) + [w for w in args.workers if w != 1 or args.no_one]
        for workers in counts:
            rows.append((f"this grader, {workers} worker(s)",
                         *run(tmp / "subs", tmp / f"w{workers}", workers, feedback=args.feedback)))
        last = counts[-1]
        resumed = run(tmp / "subs", tmp / f"w{last}", last, resume=True, feedback=args.feedback)
    base = rows[0][1] if not args.no_plain else None
    one = next((s for label, s, *_ in rows if label.endswith(" 1 worker(s)")), None)
    print(f"{'run':<34}{'seconds':>9}{'notebooks/min':>15}{'x plain':>9}{'x 1 worker':>12}")
    for label, seconds, _, timings in rows:
        print(f"{label:<34}{seconds:>9.1f}{n / seconds * 60:>15.1f}"
              f"{(base / seconds if base else float('nan')):>9.2f}{(one / seconds if one else float('nan')):>12.2f}"
              f"   ({_phases(timings)})")
    print(f"{'--resume, nothing to execute':<34}{resumed[0]:>9.1f}{n / resumed[0] * 60:>15.1f}"
          f"{'':>21}   ({_phases(resumed[2])})")
    print(f"coordinator's serial cost: {resumed[0] / n:.2f} s per notebook, fixed start included "
          f"(target <= {TARGET_SERIAL} s per notebook plus a fixed start)")
    ours = [scores for label, _, scores, _ in rows if label.startswith("this grader")] + [resumed[1]]
    same = all(s == ours[0] for s in ours)
    print("scores of every worker count (and of --resume) identical:", same)
    ok = same
    two = next((s for label, s, *_ in rows if label.endswith(" 2 worker(s)")), None)
    if base and two:
        ratio = base / two
        print(f"2 workers / plain nbgrader = {ratio:.2f} (target >= {TARGET})")
        ok &= ratio >= TARGET
    if one and two:
        print(f"2 workers / 1 worker = {one / two:.2f} (target >= {TARGET_ONE})")
        ok &= one / two >= TARGET_ONE
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
