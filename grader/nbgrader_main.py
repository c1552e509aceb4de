"""``python -m grader.nbgrader_main ARGS``: nbgrader's command line for the passes the
coordinator runs (generate_assignment, autograde, generate_feedback, export), started
faster and writing the gradebook in fewer transactions (``grader.speedups``); the same
apps, options and results as ``python -m nbgrader ARGS``."""
import sys

from grader import speedups

speedups.defer_iri_syntax()
speedups.install_batch()

from nbgrader.apps.nbgraderapp import main  # noqa: E402


def _wait_for_arguments() -> None:
    """``--wait-for-arguments`` (``grader.nbgrader_apps.warm_passes``): import what every
    pass needs, then read the pass's arguments and environment (one JSON line) from the
    standard input and run it; exit on an empty line or the end of the input."""
    import json
    import os

    import nbgrader.apps.autogradeapp  # noqa: F401
    import nbgrader.apps.exportapp  # noqa: F401
    import nbgrader.apps.generateassignmentapp  # noqa: F401
    import nbgrader.apps.generatefeedbackapp  # noqa: F401
    import grader.judge  # noqa: F401 (nbgrader_config.py's preprocessors)
    import grader.parallel  # noqa: F401

    line = sys.stdin.readline()
    if not line.strip():
        sys.exit(0)
    message = json.loads(line)
    os.environ.update(message["env"])
    sys.argv[1:] = message["args"]


if __name__ == "__main__":
    if sys.argv[1:] == ["--wait-for-arguments"]:
        _wait_for_arguments()
    main()
