"""nbgrader settings of an instructor's server on the course hub (deploy/hub/).

The hub puts this folder on JUPYTER_CONFIG_PATH in front of the course's instructor lab
settings (jupyter/instructor) and passes the course id, the exchange and the instructor's
course folder (a clone of the course, `~/regnorm` by default) in the environment. The
course folder's own nbgrader_config.py is loaded from here, so the formgrader, nbgrader's
commands and `python -m grader` all grade with the same settings: the sandbox and the judge.
"""
import os

c = get_config()  # noqa: F821  (nbgrader provides get_config)

_course = os.path.expanduser(os.environ.get("REGNORM_COURSE_DIR", "~/regnorm"))
if os.path.isfile(os.path.join(_course, "nbgrader_config.py")):
    load_subconfig(os.path.join(_course, "nbgrader_config.py"))  # noqa: F821
c.CourseDirectory.course_id = os.environ.get("REGNORM_COURSE_ID", "regnorm")
c.Exchange.root = os.environ.get("REGNORM_EXCHANGE", "/srv/nbgrader/exchange")
