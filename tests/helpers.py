"""Shared by the test modules: score a mistake with the in-process scorer."""
from __future__ import annotations

from grader import notebooks
from grader.mistakes import catalogue
from grader.paths import source_notebooks
from grader.score import score_in_process


def notebook_of(assignment: str) -> str:
    (nb,) = source_notebooks(assignment)
    return nb.stem


def run_cells(assignment: str, cells) -> str:
    """The sources of the notebook's locked experiment cells ``cells`` (grade_ids), in order,
    as one cell's code (for a kernel that replays them)."""
    nb = notebooks.load(source_notebooks(assignment)[0])
    by_id = {notebooks.grade_id(c): c.source for c in nb.cells}
    return "".join(by_id[gid] + "\n" for gid in cells)


def lost_points(assignment: str, mistake_name: str):
    """({test grade_id: points lost}, {test grade_id: message}) for one catalogued mistake
    (the runs a question reads run where the notebook has them: grader.score)."""
    mistake = catalogue(assignment)[mistake_name]
    results = score_in_process(assignment, notebook_of(assignment), {mistake.exercise: mistake.source},
                               only=mistake.exercise)
    lost = {gid: r.max_score - r.score for gid, r in results.items() if r.score < r.max_score}
    messages = {gid: r.message for gid, r in results.items() if r.message}
    return lost, messages


def assert_mistake(assignment: str, mistake_name: str, expected_lost: dict, fragments: dict):
    """The mistake loses exactly ``expected_lost`` and each listed cell's message contains
    its fragment (case-insensitive)."""
    lost, messages = lost_points(assignment, mistake_name)
    assert lost == expected_lost, f"{mistake_name}: lost {lost}, expected {expected_lost}; messages {messages}"
    for gid, fragment in fragments.items():
        assert fragment.lower() in messages.get(gid, "").lower(), (
            f"{mistake_name}: message of {gid} lacks {fragment!r}: {messages.get(gid)!r}")


def mistake_tests(assignment: str, expected: dict):
    """The two tests every ``test_<topic>_mistakes.py`` module runs on its ``EXPECTED``
    ({mistake: ({test cell: points lost}, {test cell: message fragment})}): every mistake
    in the catalogue has an expectation, and each is caught and named as expected."""
    import pytest

    def test_every_mistake_has_an_expectation():
        assert set(expected) == set(catalogue(assignment))

    @pytest.mark.parametrize("name", sorted(expected))
    def test_mistake_is_caught_and_named(name):
        lost, fragments = expected[name]
        assert_mistake(assignment, name, lost, fragments)

    return test_every_mistake_has_an_expectation, test_mistake_is_caught_and_named


def question_runs(assignment: str) -> dict[str, list[str]]:
    """{exercise: the experiment cells its tests read} (grader.notebooks.question_runs)."""
    return notebooks.question_runs(notebooks.load(source_notebooks(assignment)[0]))
