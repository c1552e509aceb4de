"""The tables people read: rows per exercise, the class's score table, the class's mistakes,
and how a failed cell's outputs become a message."""
from grader.autograde import CellResult, NotebookResult, _message
from grader.report import class_mistakes, exercise_rows, score_table


def _result(student, scores):
    r = NotebookResult(student, "03-dropout", "dropout")
    for gid, exercise, score, max_score, message in scores:
        r.cells.append(CellResult(gid, exercise, score, max_score, message))
    return r


ALICE = _result("alice", [("test_dropout", "dropout", 2, 2, ""), ("test_Dropout", "Dropout", 1, 1, "")])
DAVE = _result("dave", [("test_dropout", "dropout", 0, 2, "The surviving units are not rescaled.\n  How to fix: divide."),
                        ("test_Dropout", "Dropout", 1, 1, "")])
CAROL = _result("carol", [("test_dropout", "dropout", 0, 2, "dropout(x) raised NotImplementedError: not implemented yet"),
                          ("test_Dropout", "Dropout", 0, 1, "name 'Dropout' is not defined: run the cell")])


def test_exercise_rows_show_points_and_the_failing_message():
    text = exercise_rows(DAVE)
    assert "FAIL dropout" in text and "0 / 2" in text
    assert "test_dropout: The surviving units are not rescaled." in text and "How to fix: divide." in text
    assert text.splitlines()[-1].split()[-3:] == ["1", "/", "3"]
    assert "FAIL" not in exercise_rows(ALICE) and "test_dropout" not in exercise_rows(DAVE, messages=False)


def test_score_table_has_a_row_per_student_with_totals():
    table = score_table([ALICE, DAVE, CAROL]).splitlines()
    rows = {line.split()[0]: line for line in table[2:]}
    assert set(rows) == {"alice", "carol", "dave"}
    assert rows["alice"].split()[-3:] == ["3", "/", "3"] and rows["carol"].split()[-3:] == ["0", "/", "3"]


def test_class_mistakes_separate_real_mistakes_from_unattempted_work():
    text = class_mistakes([ALICE, DAVE, CAROL])
    lines = text.splitlines()
    assert "03-dropout/test_dropout" in lines[1] and lines[1].split()[0] == "1"  # dave only
    assert "not rescaled" in lines[2]
    assert "Not attempted" in lines[-1] and "test_Dropout x1" in lines[-1] and "test_dropout x1" in lines[-1]
    assert class_mistakes([ALICE]) == "Nobody lost a point."


def test_messages_from_outputs():
    cell = {"outputs": [{"output_type": "error", "ename": "AssertionError", "evalue": "names the mistake"}]}
    assert _message(cell) == "names the mistake"
    cell = {"outputs": [{"output_type": "error", "ename": "CellTimeoutError", "evalue": ""}]}
    assert "time limit" in _message(cell)
    cell = {"outputs": [{"output_type": "stream", "name": "stderr", "text": "UserWarning: x"}]}
    assert "stderr" in _message(cell) and "UserWarning" in _message(cell)
    cell = {"outputs": [{"output_type": "error", "ename": "TypeError", "evalue": "bad"}]}
    assert _message(cell) == "TypeError: bad"


def test_exercise_outcomes_split_full_marks_mistakes_and_unattempted_work():
    from grader.report import exercise_outcomes

    rows = {key: counts for key, *counts in exercise_outcomes([ALICE, DAVE, CAROL])}
    assert rows["03-dropout/dropout"] == [1, 1, 1]   # alice full, dave wrong, carol untried
    assert rows["03-dropout/Dropout"] == [2, 0, 1]


def test_commonest_mistakes_count_students():
    from grader.report import commonest_mistakes

    eve = _result("eve", [("test_dropout", "dropout", 0, 2, "The surviving units are not rescaled.\n  How to fix: divide."),
                          ("test_Dropout", "Dropout", 1, 1, "")])
    (test, first, n, message), = commonest_mistakes([ALICE, DAVE, CAROL, eve])
    assert (test, first, n) == ("03-dropout/test_dropout", "The surviving units are not rescaled.", 2)
    assert "How to fix: divide." in message


def test_html_report_has_both_charts_and_the_messages(tmp_path):
    from grader.report import write_html

    page = write_html([ALICE, DAVE, CAROL], tmp_path / "report")
    text = page.read_text()
    for png in ("pass_rate.png", "mistakes.png"):
        assert (tmp_path / "report" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert text.count("src='data:image/png;base64,") == 2  # one file carries its charts
    assert "not rescaled" in text and "How to fix: divide." in text and "alice" in text
    assert "http://" not in text and "https://" not in text  # nothing from the internet
