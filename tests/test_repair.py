"""Deleted cells are put back from the release, in place, before nbgrader grades."""
from grader import notebooks, submissions
from grader.paths import COURSE
from grader.repair import NOTE, restore_missing_cells


def _ids(nb):
    return [notebooks.grade_id(c) for c in nb.cells]


def test_restores_deleted_exercise_and_tests_in_their_places():
    release = notebooks.load(COURSE / "03-dropout" / "dropout.ipynb")
    nb = submissions.complete("03-dropout", "dropout")
    gone = {"Dropout", "test_Dropout", "test_Dropout_mode", "test_dropout_eval", "setup"}
    nb.cells = [c for c in nb.cells if notebooks.grade_id(c) not in gone]
    restored = restore_missing_cells(nb, release)
    assert restored == ["test_dropout_eval", "Dropout", "test_Dropout", "test_Dropout_mode"]
    graded = [i for i in _ids(release) if i != "setup"]
    assert _ids(nb) == graded  # same order as the release; the setup cell is not graded
    cell = nb.cells[_ids(nb).index("Dropout")]
    assert cell.source.startswith(NOTE) and "raise NotImplementedError()" in cell.source
    assert restore_missing_cells(nb, release) == []  # nothing more to do
