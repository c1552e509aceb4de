"""A hostile class graded by the real pipeline (collection, nbgrader, sandbox, judge) in
one run: every submission earns at most what its honest answers deserve, no correct
exercise of any student loses a point, every other submission is graded, refused entries
are reported, and nothing outside the submissions' scratch folders changes."""
from __future__ import annotations

import csv
import hashlib
import os
import uuid
from pathlib import Path
from unittest import mock

import pytest

import hostile
from grader import notebooks
from grader.paths import ROOT
from grader.score import score_in_process

pytestmark = pytest.mark.slow

WATCHED = ["grader", "solutions", "course", "regnorm", "nbgrader_config.py"]


def _tree_hash(paths) -> str:
    digest = hashlib.sha256()
    for top in paths:
        top = Path(top)
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file()
                                                   and "__pycache__" not in p.parts)
        for f in files:
            digest.update(str(f).encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    from grader.autograde import autograde

    base = tmp_path_factory.mktemp("hostile")
    subs, work = base / "submissions", base / "work"
    marker = Path("/tmp") / f"grader-pwned-{uuid.uuid4().hex}"
    roster = hostile.build_class(subs, work, marker)
    # a notebook left in submitted/ by an earlier run must not be graded again
    ghost = work / "submitted" / "ghost" / hostile.ASSIGNMENT
    ghost.mkdir(parents=True)
    (ghost / f"{hostile.NOTEBOOK}.ipynb").write_text((subs / "alice" / hostile.ASSIGNMENT / f"{hostile.NOTEBOOK}.ipynb").read_text())
    before = _tree_hash([ROOT / p for p in WATCHED])
    subs_before = _tree_hash([subs / "alice", subs / "bob"])
    # 20 s: the sweep that the questions read takes a few seconds idle, several times that on
    # a loaded machine; the endless loops wait this long once each
    env = {"GRADER_CELL_TIMEOUT": "20", "GRADER_NOTEBOOK_TIMEOUT": "300"}
    with mock.patch.dict(os.environ, env):  # restored afterwards, even on failure
        log: list[str] = []
        results = autograde(subs, work, feedback=False, log=log.append)
    return {
        "roster": roster, "work": work, "subs": subs, "marker": marker, "log": log,
        "results": {r.student: r for r in results},
        "repo_unchanged": before == _tree_hash([ROOT / p for p in WATCHED]),
        "subs_unchanged": subs_before == _tree_hash([subs / "alice", subs / "bob"]),
    }


def _deserved(student) -> dict:
    answers = hostile.answer_sources(student)
    return {gid: r.score for gid, r in score_in_process(hostile.ASSIGNMENT, hostile.NOTEBOOK, answers).items()}


def test_every_submission_is_graded_and_only_those(graded):
    results = graded["results"]
    expected = {s.name for s in graded["roster"]} | set(hostile.HONEST)
    assert expected <= set(results)
    for name in expected:
        assert not results[name].error, (name, results[name].error)
        assert results[name].max_score == results["alice"].max_score > 0
    # a valid student's refused notebook (a link, a folder, not JSON) scores 0 with the reason
    assert set(results) - expected == set(hostile.REFUSED_WITH_RESULT)
    for name in hostile.REFUSED_WITH_RESULT:
        assert results[name].score == 0 and results[name].error.startswith("not graded:"), results[name]


def test_refused_entries_are_reported_not_followed(graded):
    problems = (graded["work"] / "problems.txt").read_text()
    for name in hostile.REFUSED:
        assert repr(name)[1:-1].replace("*", "") in problems or name in problems, (name, problems)
    assert "not followed" in problems and "not a readable notebook" in problems
    assert "refused (names may use letters" in problems
    assert "ghost" not in graded["results"]


@pytest.mark.parametrize("name", [s.name for s in hostile.students()])
def test_no_submission_earns_more_than_it_deserves(graded, name):
    student = next(s for s in graded["roster"] if s.name == name)
    got = {c.grade_id: c.score for c in graded["results"][name].cells}
    deserved = _deserved(student)
    full = {c.grade_id: c.max_score for c in graded["results"][name].cells}
    for gid, score in got.items():
        assert score <= deserved[gid], (name, gid, score, deserved[gid], graded["results"][name].exercises())
        if not student.sabotage and deserved[gid] == full[gid]:
            assert score == full[gid], (name, gid, graded["results"][name].exercises())


def test_a_question_is_checked_against_the_run_as_it_finished(graded):
    # h-tampers-run answers the p with the highest validation loss, then rewrites `sweep` in
    # its kernel so that this p looks lowest: the check still reads the sweep as it finished
    cells = {c.grade_id: c for c in graded["results"]["h-tampers-run"].cells}
    assert cells["test_best_p_value"].score == 0, cells["test_best_p_value"]
    assert "validation" in cells["test_best_p_value"].message
    assert cells["test_variance_ratio_value"].score == cells["test_variance_ratio_value"].max_score


def test_honest_students_keep_full_marks(graded):
    for name in hostile.HONEST:
        r = graded["results"][name]
        assert r.score == r.max_score > 0, r.exercises()


def test_nothing_outside_the_scratch_folders_changed(graded):
    assert graded["repo_unchanged"], "the checks, solutions, course or helpers changed on disk"
    assert graded["subs_unchanged"], "a classmate's submission changed"
    assert not graded["marker"].exists()
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded['work'] / 'gradebook.db'}") as gb:
        assert gb.find_submission("03-dropout", "alice").score == graded["results"]["alice"].max_score


def _outputs(work, student) -> str:
    nb = notebooks.load(work / "autograded" / student / hostile.ASSIGNMENT / f"{hostile.NOTEBOOK}.ipynb")
    return "\n".join(str(o) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_a_submission_sees_nothing_of_the_course_or_its_classmates(graded):
    seen = _outputs(graded["work"], "h-reads")
    assert "my notes" not in seen and hostile.SECRET not in seen
    assert "BEGIN SOLUTION" not in seen and "def check_" not in seen
    writes = _outputs(graded["work"], "h-writes")
    assert f"{ROOT}/grader/checks/dropout.py': 'OSError" in writes or "Error" in writes
    # paths under /tmp were written inside the sandbox's private /tmp, never on the host:
    # the host's files are compared in test_nothing_outside_the_scratch_folders_changed
    assert f"'{ROOT}/grader/checks/dropout.py': 'WROTE'" not in writes


def test_limits_and_deaths_cost_only_the_offending_cell(graded):
    memory = _outputs(graded["work"], "h-memory")
    assert "refused" in memory and "allocated" not in memory
    size = _outputs(graded["work"], "h-file-size")
    assert "refused: 27" in size  # EFBIG
    # the process limit holds whoever grades (tests/test_unprivileged.py grades as a normal user)
    processes = _outputs(graded["work"], "h-processes")
    assert "refused after" in processes or "max_processes" in processes, processes[-500:]
    for name in ("h-os-exit", "h-exit", "h-ignores-sigint"):
        assert "KernelDied" in _outputs(graded["work"], name) or "CellTimeoutError" in _outputs(graded["work"], name)


def test_cells_csv_is_safe_for_spreadsheets_and_terminals(graded):
    raw = (graded["work"] / "cells.csv").read_text()
    assert "\x1b" not in raw and "\x07" not in raw
    rows = list(csv.DictReader(open(graded["work"] / "cells.csv")))
    for row in rows:
        for value in row.values():
            assert not value[:1] in ("=", "+", "-", "@"), value
    evil = [r["message"] for r in rows if r["student"] == "h-control-chars" and r["test"] == "test_dropout"]
    assert evil and "HYPERLINK" in evil[0]


# 07-beyond-penalties: the early-stopping copy test builds its model with the notebook's own
# `bp.classifier`, in the student's kernel. A student who keeps a reference to the live
# weights and redefines `bp` so that its models hand out copies must not earn that test.
_FAKE_BP = '''
import types
_real_classifier = bp.classifier
class _CopyingModel(nn.Module):
    def __init__(self, seed, **kwargs):
        super().__init__()
        self.inner = _real_classifier(seed, **kwargs)
    def forward(self, x):
        return self.inner(x)
    def state_dict(self, *args, **kwargs):
        return {k: v.clone() for k, v in self.inner.state_dict().items()}
    def load_state_dict(self, state, *args, **kwargs):
        return self.inner.load_state_dict(state)
bp = types.SimpleNamespace(**{**vars(bp), "classifier": _CopyingModel})
'''


def test_07_a_redefined_bp_cannot_hide_a_kept_reference(tmp_path):
    from grader import submissions
    from grader.autograde import autograde
    from grader.mistakes import catalogue

    assignment, name = "07-beyond-penalties", "beyond_penalties"
    subs, work = tmp_path / "submissions", tmp_path / "work"
    submissions.write(submissions.complete(assignment, name), subs / "alice" / assignment / f"{name}.ipynb")
    kept_reference = catalogue(assignment)["es_reference"].source.strip("\n")
    answers = dict(submissions.solution_sources(assignment, name), EarlyStopping=kept_reference + "\n" + _FAKE_BP)
    submissions.write(submissions.fill(assignment, name, answers), subs / "h-fake-bp" / assignment / f"{name}.ipynb")
    results = {r.student: r for r in autograde(subs, work, feedback=False, log=lambda message: None)}
    assert results["alice"].score == results["alice"].max_score > 0, results["alice"].exercises()
    cells = {c.grade_id: c for c in results["h-fake-bp"].cells}
    assert cells["test_EarlyStopping_state"].score == 0, cells["test_EarlyStopping_state"]
    assert "do not redefine `bp`" in cells["test_EarlyStopping_state"].message
    deserved = score_in_process(assignment, name, {"EarlyStopping": kept_reference})
    for gid, cell in cells.items():
        assert cell.score <= deserved[gid].score, (gid, cell.score, deserved[gid].score)
