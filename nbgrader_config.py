"""nbgrader settings for this course; the repository root is the course root.

Instructor working data (submissions, autograded copies, feedback, the gradebook, exports)
lives under classroom/, which git ignores. `python -m grader` overrides these folders for
its own runs (the demo class, `check`), never the course layout.
"""
import os

c = get_config()  # noqa: F821  (nbgrader provides get_config)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "course"
c.CourseDirectory.submitted_directory = "classroom/submitted"
c.CourseDirectory.autograded_directory = "classroom/autograded"
c.CourseDirectory.feedback_directory = "classroom/feedback"
# The gradebook: SQLite by default. For a shared server or a big class, PostgreSQL, e.g.
#   c.CourseDirectory.db_url = "postgresql+psycopg2://grader:PASSWORD@dbhost:5432/regnorm"
# (needs psycopg2-binary); GRADER_DB_URL overrides it without editing this file.
def _driver(url):
    """SQLAlchemy 2.1 reads postgresql:// as psycopg 3; the course installs psycopg2."""
    if url.startswith("postgresql://"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


c.CourseDirectory.db_url = _driver(os.environ.get("GRADER_DB_URL") or (
    "sqlite:///" + os.path.join(c.CourseDirectory.root, "classroom", "gradebook.db")))
# The course id (the exchange's folder); the course hub (deploy/hub/) may name it otherwise.
c.CourseDirectory.course_id = os.environ.get("REGNORM_COURSE_ID", "regnorm")

# Less repeated work per notebook in every nbgrader pass, the same results (grader/speedups.py).
try:
    from grader.speedups import install as _speedups
    _speedups()
except ImportError:  # pragma: no cover (nbgrader run from outside the course's environment)
    pass

# The released stub of every solution region.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# A student who deletes a test cell is graded, not zeroed: the cell is put back.
c.OverwriteCells.add_missing_cells = True

# Pinned kernel; per-cell time limit above the longest training cell (about 5 s) and
# bounded, so an endless loop costs one cell, not the whole notebook.
c.Execute.kernel_name = "python3"
c.Execute.timeout = int(os.environ.get("GRADER_CELL_TIMEOUT", "120"))
c.Execute.interrupt_on_timeout = True

# Autograding that no submission can cheat or harm (README, "Security model"): nbgrader's
# execute step is replaced by the judge. Each student kernel runs in a bubblewrap sandbox;
# test cells never run in it: the judge runs them in this (trusted) process against
# proxies of the student's objects. The other steps are nbgrader's own.
_JUDGE = [
    "grader.judge.JudgeExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# GRADER_PLAIN_NBGRADER=1 keeps nbgrader's own execute step (unconfined, tests inside the
# student's kernel): only `make bench` sets it, to measure the alternative side by side.
# Parallel grading (grader/parallel.py) runs nbgrader twice around the workers: GRADER_PHASE
# "harvest" writes each sanitized notebook down as a task and runs nothing; "record" puts the
# workers' executed notebooks in (the judge grades any notebook they did not).
_PHASE = {"harvest": ["grader.parallel.Harvest"],
          "record": ["grader.parallel.InjectExecuted"] + _JUDGE[1:]}
if os.environ.get("GRADER_PHASE") in _PHASE:
    c.Autograde.autograde_preprocessors = _PHASE[os.environ["GRADER_PHASE"]]
elif not os.environ.get("GRADER_PLAIN_NBGRADER"):
    c.Autograde.autograde_preprocessors = _JUDGE
# Limits of each student kernel (see grader/sandbox.py). `python -m grader autograde
# --no-sandbox` sets Sandbox.enabled = False for trusted submissions, with a warning.
c.Sandbox.memory_limit = 4 * 2**30        # bytes of address space
c.Sandbox.max_processes = 512             # processes and threads; a kernel reaching it is stopped
c.Sandbox.max_file_size = 256 * 2**20     # bytes per file written
c.Sandbox.cpu_time = 1800                 # CPU seconds per kernel
c.Sandbox.tmp_size = 256 * 2**20          # bytes of the kernel's private /tmp
c.Sandbox.notebook_timeout = int(os.environ.get("GRADER_NOTEBOOK_TIMEOUT", "900"))  # wall clock per notebook

# Late submissions (a due date from `python -m grader autograde --lms ... --due A=DATE`, or
# `nbgrader db assignment add A --duedate=DATE`, and the submission time the LMS recorded):
# "none" records how late only; "zero" scores a late submission 0 (nbgrader's two methods).
c.LateSubmissionPlugin.penalty_method = os.environ.get("GRADER_LATE_PENALTY", "none")

# Hidden tests are stripped from the release; the feedback shows the test cells' calls.
c.ClearHiddenTests.enforce_metadata = True
