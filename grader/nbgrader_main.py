"""``python -m grader.nbgrader_main ARGS``: nbgrader's command line for the passes the
coordinator runs (generate_assignment, autograde, generate_feedback, export), started
faster and writing the gradebook in fewer transactions (``grader.speedups``); the same
apps, options and results as ``python -m nbgrader ARGS``."""
from grader import speedups

speedups.defer_iri_syntax()
speedups.install_batch()

from nbgrader.apps.nbgraderapp import main  # noqa: E402

if __name__ == "__main__":
    main()
