"""``python -m grader``: release, check, autograde, demo, report."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="regenerate course/ from solutions/ with nbgrader")
    p.add_argument("assignments", nargs="*", help="only these assignments (default: all)")

    p = sub.add_parser("check", help="grade one notebook like the autograder and print a row per exercise")
    p.add_argument("notebook")
    p.add_argument("--quiet", action="store_true", help="scores only, no messages")

    p = sub.add_parser("autograde", help="grade SUBMISSIONS_DIR/<student>/<assignment>/*.ipynb with nbgrader")
    p.add_argument("submissions")
    p.add_argument("--workdir", default=None, help="where the gradebook and feedback go (default: classroom/)")
    p.add_argument("--no-feedback", action="store_true")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run the students' kernels unconfined (trusted submissions only; warns)")
    p.add_argument("--workers", type=int, default=None,
                   help="notebooks graded at once on this machine (default: the number of cores; "
                        "0: inside nbgrader, one after another)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="a Dask scheduler (tcp://host:8786) whose workers execute the notebooks")
    p.add_argument("--resume", action="store_true",
                   help="keep the notebooks an earlier run of this workdir graded, unless changed")

    p = sub.add_parser("demo", help="build and autograde a demo class of four students")
    p.add_argument("assignments", nargs="*", help="only these assignments (default: all)")
    p.add_argument("--workdir", default=None,
                   help="the gradebook's folder (default: classroom/, the one formgrader reads)")

    p = sub.add_parser("report", help="the class's scores and mistakes from the gradebook, and an HTML report")
    p.add_argument("--workdir", default=None, help="the gradebook's folder (default: classroom/)")
    p.add_argument("--out", default=None, help="where the HTML page and figures go (default: WORKDIR/report)")

    args = parser.parse_args(argv)
    if args.command == "release":
        from .release import release

        for path in release(args.assignments or None):
            print(f"wrote {path}")
        return 0
    if args.command == "check":
        from .check import check

        return check(args.notebook, messages=not args.quiet)
    if args.command == "autograde":
        from . import report
        from .autograde import GradingInterrupted, autograde
        from .paths import CLASSROOM

        workdir = Path(args.workdir) if args.workdir else CLASSROOM
        status = 0
        try:
            results = autograde(Path(args.submissions), workdir, feedback=not args.no_feedback,
                                sandbox=not args.no_sandbox, workers=args.workers,
                                scheduler=args.scheduler, resume=args.resume)
        except GradingInterrupted as stop:
            results, status = stop.results, 130
        print(report.score_table(results))
        print()
        print(report.class_mistakes(results))
        print(f"\nGrades: {workdir / 'grades.csv'}; feedback: {workdir / 'feedback'}")
        if status:
            print("Interrupted: what was graded is in the gradebook; run the same command with "
                  "--resume to grade the rest.")
        return status
    if args.command == "report":
        from . import report
        from .paths import CLASSROOM

        workdir = Path(args.workdir) if args.workdir else CLASSROOM
        results = report.gradebook_results(workdir)
        if not results:
            print(f"nothing graded in {workdir / 'gradebook.db'} yet (run `make demo` or `grader autograde`)")
            return 1
        print(report.score_table(results))
        print()
        print(report.class_mistakes(results))
        page = report.write_html(results, Path(args.out) if args.out else workdir / "report")
        print(f"\nReport: {page}")
        return 0
    if args.command == "demo":
        from .demo import demo

        kwargs = {"workdir": Path(args.workdir)} if args.workdir else {}
        demo(only=args.assignments or None, **kwargs)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
