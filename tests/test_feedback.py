"""What a test cell shows: the judge's outputs (grader.feedback.cell_outputs) and, in a
real kernel, the check decorator's block: a failure is one styled block and one
AssertionError with a one-line traceback, a pass one line with the points."""
import json

import nbformat
import pytest
from nbgrader.utils import determine_grade

from grader import feedback
from grader.paths import COURSE

MESSAGE = ("The surviving units are not rescaled: without dividing by (1 - p) the expected output\n"
           "    is 0.8·x in training.\n"
           "  How to fix: divide the survivors by (1 - p) (inverted dropout): x * mask / (1 - p).")


def _graded_cell(outputs, points=2):
    cell = nbformat.v4.new_code_cell("check(x)", outputs=[nbformat.from_dict(o) for o in outputs])
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True,
                                 "grade_id": "test_dropout", "points": points, "schema_version": 3}
    return cell


def test_a_failure_is_one_block_then_exactly_one_assertion_error():
    outputs = feedback.cell_outputs("test_dropout", 0, 2, MESSAGE)
    errors = [o for o in outputs if o["output_type"] == "error"]
    assert len(errors) == 1 and outputs[-1] is errors[0]
    assert errors[0]["ename"] == "AssertionError" and errors[0]["evalue"] == MESSAGE
    assert len(errors[0]["traceback"]) == 1 and "grader" not in errors[0]["traceback"][0]
    block = outputs[0]
    assert block["output_type"] == "display_data"
    text, page = block["data"]["text/plain"], block["data"]["text/html"]
    assert text.splitlines()[0] == "FAILED test_dropout: 2 points lost"
    assert "not rescaled" in text and "How to fix: divide the survivors" in text
    assert "2 points lost" in page and "The mistake:" in page and "How to fix:" in page
    assert "x * mask / (1 - p)" in page
    for o in outputs:  # valid nbformat v4 outputs
        nbformat.validate(nbformat.v4.new_notebook(cells=[_graded_cell([o])]))
    assert determine_grade(_graded_cell(outputs)) == (0, 2)


def test_a_pass_is_one_line_with_the_points_and_scores_full_marks():
    outputs = feedback.cell_outputs("test_dropout", 2, 2, None)
    assert [o["output_type"] for o in outputs] == ["display_data"]
    assert outputs[0]["data"]["text/plain"] == "passed test_dropout: 2 points"
    assert len(outputs[0]["data"]["text/plain"].splitlines()) == 1
    assert "test_dropout" in outputs[0]["data"]["text/html"] and "2 points" in outputs[0]["data"]["text/html"]
    assert determine_grade(_graded_cell(outputs)) == (2, 2)
    assert "1 point" in feedback.cell_outputs("t", 1, 1, None)[0]["data"]["text/plain"]


def test_messages_are_escaped_and_messages_without_a_fix_still_read():
    outputs = feedback.cell_outputs("test_x", 0, 1, "x <b>bold</b> & y")
    assert "&lt;b&gt;" in outputs[0]["data"]["text/html"] and "<b>bold</b>" not in outputs[0]["data"]["text/html"]
    assert feedback.split_message("just this") == ("just this", "")
    assert feedback.split_message(MESSAGE)[1].startswith("divide the survivors")


def test_released_test_cells_are_found_with_their_points():
    nb = json.loads((COURSE / "03-dropout" / "dropout.ipynb").read_text())
    cells = {c["metadata"]["nbgrader"]["grade_id"]: c for c in nb["cells"]
             if c["metadata"].get("nbgrader", {}).get("grade")}
    source = "".join(cells["test_dropout"]["source"])
    assert feedback.lab_test_cell(source) == ("test_dropout", 2.0)
    assert feedback.lab_test_cell(source + "\n\n") == ("test_dropout", 2.0)
    assert feedback.lab_test_cell("print('not a test')") is None
    from grader.notebooks import strip_markers
    from grader.paths import SOLUTIONS

    source_nb = json.loads((SOLUTIONS / "03-dropout" / "dropout.ipynb").read_text())
    hidden = next(c for c in source_nb["cells"]
                  if c["metadata"].get("nbgrader", {}).get("grade_id") == "test_dropout_randomness")
    points = float(hidden["metadata"]["nbgrader"]["points"])
    assert feedback.lab_test_cell(strip_markers("".join(hidden["source"]))) == ("test_dropout_randomness", points)


def test_outside_a_kernel_a_check_shows_nothing_and_raises_a_plain_assertion_error(capsys):
    from grader.hidden.dropout import check_scaling_answer  # the answer of a question: hidden

    with pytest.raises(AssertionError) as info:
        check_scaling_answer(123.0)
    assert type(info.value) is AssertionError and not hasattr(info.value, "_render_traceback_")
    assert capsys.readouterr() == ("", "")


@pytest.mark.slow
def test_in_a_kernel_a_check_shows_the_block_and_a_one_line_traceback():
    from nbclient import NotebookClient

    nb = json.loads((COURSE / "03-dropout" / "dropout.ipynb").read_text())
    test = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id")
                == "test_expected_without_rescale")
    source = "".join(test["source"])
    cells = [nbformat.v4.new_code_cell("expected_without_rescale = \"five thousand\""),  # not a number
             nbformat.v4.new_code_cell(source),
             nbformat.v4.new_code_cell("from grader.checks.dropout import check_dropout_eval\n"
                                       "check_dropout_eval(lambda x, p=0.5, training=True, generator=None: x)")]
    from grader.paths import subprocess_env
    import os

    run = nbformat.v4.new_notebook(cells=cells)
    env = subprocess_env()
    old = dict(os.environ)
    os.environ.update(env)
    try:
        NotebookClient(run, timeout=120, kernel_name="python3", allow_errors=True).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    failed = run.cells[1].outputs
    assert [o.output_type for o in failed] == ["display_data", "error"]
    assert failed[1].ename == "AssertionError" and failed[1].traceback == feedback.short_traceback(
        "test_expected_without_rescale")
    assert "1 point lost" in failed[0].data["text/plain"] and "How to fix" in failed[0].data["text/html"]
    assert "test_expected_without_rescale" in failed[0].data["text/plain"]
    passed = run.cells[2].outputs  # not a released test cell: the check's name, no points
    assert [o.output_type for o in passed] == ["display_data"]
    assert passed[0].data["text/plain"] == "passed check_dropout_eval"
