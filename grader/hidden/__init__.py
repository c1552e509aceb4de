"""Hidden checks and the answers of question exercises, one module per assignment.

Hidden test cells import from ``grader.hidden.<topic>``; visible ones from
``grader.checks.<topic>``. An instructor can give students the grader package without this
folder: nothing in ``grader.checks`` imports from here.
"""
