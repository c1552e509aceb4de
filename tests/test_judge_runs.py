"""A question is checked against its run as the run left it: the judge copies the values a
locked experiment cell computed out of the sandboxed kernel when that cell finishes, so an
answer cell that rewrites the run afterwards (in place or by a new object) changes nothing
the check sees; a run that failed or was deleted leaves a message that says which cell."""
from __future__ import annotations

import nbformat
import pytest

from grader.judge import Judge, run_specs
from grader.sandbox import Sandbox

pytestmark = pytest.mark.slow

SETUP = "import torch\n"
RUN = 'data = {"v": torch.tensor([1.0, 2.0]), "n": 3}\nscale = 2\n'
HONEST = 'answer = float(data["v"][0])\n'
TAMPER = ('answer = 2.0\n'
          'data["v"][0] = 2.0                       # in place: the tensor is the twin the judge holds\n'
          'data["n"] = 2\n'
          'data = {"v": torch.tensor([2.0]), "n": 2}  # and a new object under the same name\n'
          'scale = 100\n')
TEST = ('assert data["n"] == 3 and scale == 2, f"the run\'s values changed: {data}, {scale}"\n'
        'assert answer == data["v"][0].item(), f"{answer} is not the first value of your run"\n')
TESTS = {"test_answer": (TEST, 2.0)}


def _cell(source: str, gid: str, **meta):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade_id": gid, "locked": not meta.get("solution", False),
                                 "grade": meta.get("grade", False), "solution": meta.get("solution", False),
                                 "schema_version": 3}
    return cell


def _grade(run: str | None, answer: str, before: str = "") -> str:
    """The test cell's outputs as text, for a notebook with this run (None: deleted), this
    answer, and a student's cell ``before`` the run."""
    cells = [_cell(SETUP, "setup")]
    if before:
        cells.append(nbformat.v4.new_code_cell(before))
    if run is not None:
        cells.append(_cell(run, "run"))
    cells += [_cell(answer, "answer", solution=True), _cell("# the test", "test_answer", grade=True)]
    nb = nbformat.v4.new_notebook(cells=cells)
    runs = run_specs(TESTS, {"setup": SETUP, "run": RUN})
    assert runs == {"run": {"source": RUN, "names": ["data", "scale"]}}
    Judge(Sandbox(), cell_timeout=60, notebook_timeout=300).run(nb, TESTS, None, runs)
    return "\n".join(str(o) for o in nb.cells[-1].outputs)


def test_the_honest_answer_passes_and_rewriting_the_run_earns_nothing():
    assert "passed test_answer" in _grade(RUN, HONEST)
    tampered = _grade(RUN, TAMPER)
    assert "passed" not in tampered
    assert "2.0 is not the first value of your run" in tampered  # data and scale as the run left them


def test_a_failed_or_deleted_run_names_its_cell():
    failed = _grade(RUN, HONEST, before="torch = None  # breaks the run\n")
    assert "comes from the experiment cell `run`, which raised an error" in failed
    assert "passed" not in failed
    # a student's own cell under the run's name is not the run: nothing it defines is read
    assert "comes from the experiment cell `run`, which did not run" in _grade(None, RUN + HONEST)
    assert "comes from the experiment cell `run`, which did not run" in _grade(RUN + "# mine\n", HONEST)
