"""nbgrader settings of a student's server on the course hub (deploy/hub/).

The hub puts this folder on JUPYTER_CONFIG_PATH in front of the course's student lab
settings (jupyter/student) and passes the course id and the exchange in the environment.
Students see the Assignments tab (fetch, validate, submit, fetch feedback); the formgrader,
create-assignment and the course list stay off.
"""
import os

c = get_config()  # noqa: F821  (nbgrader provides get_config)

c.CourseDirectory.course_id = os.environ.get("REGNORM_COURSE_ID", "regnorm")
c.Exchange.root = os.environ.get("REGNORM_EXCHANGE", "/srv/nbgrader/exchange")
# Validate runs the visible tests as the autograder's judge reads them (see README,
# "Teaching a class"): same kernel, same per-cell limit as grading.
c.Execute.kernel_name = "python3"
c.Execute.timeout = int(os.environ.get("GRADER_CELL_TIMEOUT", "120"))
