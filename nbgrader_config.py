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
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(c.CourseDirectory.root, "classroom", "gradebook.db")
c.CourseDirectory.course_id = "regnorm"

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

# Hidden tests are stripped from the release; the feedback shows the test cells' calls.
c.ClearHiddenTests.enforce_metadata = True
