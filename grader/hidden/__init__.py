"""Hidden checks, one module per assignment, and the answers of the question exercises.

Hidden test cells import from ``grader.hidden.<topic>``, visible ones from
``grader.checks.<topic>``: an instructor can hand students the grader package without this
folder. The checks here share the helpers of ``grader.checks``.
"""
