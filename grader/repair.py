"""Put back the cells a student deleted before nbgrader sees the submission.

nbgrader's ``add_missing_cells`` re-adds a deleted *test* cell after the cell that precedes
it in the source, and fails on the whole notebook (KeyError in 0.9.6) when that cell was
deleted too, which is what happens when a student deletes an exercise together with its
tests. So before autograding, every missing solution or test cell is restored from the
release, in its original place: the exercise then scores 0 with "not implemented yet",
and the rest of the notebook is graded as usual.
"""
from __future__ import annotations

import copy


from . import notebooks

NOTE = "# This cell was missing from your submission: the grader put the original back.\n"


def restore_missing_cells(nb, release) -> list[str]:
    """Insert into ``nb`` the release's solution and test cells it lacks, each right after
    the nearest cell before it in the release that the submission still has. Returns the
    restored grade_ids."""
    restored = []
    position = 0
    for cell in release.cells:
        gid = notebooks.grade_id(cell)
        if gid is None:
            continue
        index = next((i for i, c in enumerate(nb.cells) if notebooks.grade_id(c) == gid), None)
        if index is not None:
            position = index + 1
            continue
        if not (notebooks.is_solution(cell) or notebooks.is_test(cell)):
            continue
        missing = copy.deepcopy(cell)
        if notebooks.is_solution(cell):
            missing.source = NOTE + missing.source
        nb.cells.insert(position, missing)
        position += 1
        restored.append(gid)
    return restored
