"""``python -m grader``: release, check, autograde, demo, report, export."""
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

    p = sub.add_parser("autograde", help="grade SUBMISSIONS_DIR/<student>/<assignment>/*.ipynb with nbgrader "
                                         "(or, with --lms, an LMS's submissions zip)")
    p.add_argument("submissions", help="the submissions folder, or with --lms the zip the LMS gave you")
    p.add_argument("--lms", choices=["canvas", "moodle"], default=None,
                   help="SUBMISSIONS is Canvas's 'Download Submissions' or Moodle's 'Download all submissions' zip")
    p.add_argument("--roster", default=None, metavar="CSV",
                   help="with --lms: the class list (Canvas: its gradebook export; Moodle: the "
                        "assignment's grading worksheet) for real names, emails and SIS ids")
    p.add_argument("--due", action="append", default=[], metavar="ASSIGNMENT=DATE",
                   help="with --lms: the assignment's due date (ISO 8601, UTC unless a zone is given); "
                        "late submissions get nbgrader's late penalty (c.LateSubmissionPlugin.penalty_method)")
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

    p = sub.add_parser("export", help="the gradebook as the LMS's grade import file (Canvas or Moodle CSV)")
    p.add_argument("--lms", choices=["canvas", "moodle"], required=True)
    p.add_argument("--template", default=None, metavar="GRADEBOOK.csv",
                   help="the gradebook exported from the LMS: every row, column and id is kept, "
                        "only this course's columns are filled")
    p.add_argument("--workdir", default=None, help="the gradebook's folder (default: classroom/)")
    p.add_argument("--out", required=True, help="the CSV file to write and upload to the LMS")

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
        options = dict(feedback=not args.no_feedback, sandbox=not args.no_sandbox, workers=args.workers,
                       scheduler=args.scheduler, resume=args.resume)
        if (args.roster or args.due) and not args.lms:
            parser.error("--roster and --due go with --lms")
        try:
            if args.lms:
                from . import lms

                results = lms.autograde_zip(Path(args.submissions), args.lms, workdir,
                                            Path(args.roster) if args.roster else None,
                                            due=lms.parse_due(args.due), **options)
            else:
                results = autograde(Path(args.submissions), workdir, **options)
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
    if args.command == "export":
        from . import lms
        from .paths import CLASSROOM

        workdir = Path(args.workdir) if args.workdir else CLASSROOM
        problems = lms.export(args.lms, workdir, Path(args.out), Path(args.template) if args.template else None)
        for problem in problems:
            print(f"note: {problem}")
        print(f"Wrote {args.out}: upload it to {'Canvas (Grades > Import)' if args.lms == 'canvas' else 'Moodle (Grades > Import > CSV file, matching users by email address)'}")
        return 0
    if args.command == "demo":
        from .demo import demo

        kwargs = {"workdir": Path(args.workdir)} if args.workdir else {}
        demo(only=args.assignments or None, **kwargs)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
