"""From an LMS download to an LMS upload with two commands: a small class's Canvas zip and
Moodle zip, built as each LMS writes them (the documented formats are cited in
``tests/lms_fixtures.py``), graded end to end by ``python -m grader autograde --lms`` (the
real pipeline: collection, nbgrader, sandbox, judge, workers), then exported by
``python -m grader export --lms`` and read back cell by cell against the gradebook.

Each class: a complete notebook submitted twice (the latest resubmission graded), one
with typical mistakes from a student whose name has a comma and quotes, a late one (a due
date set, nbgrader's "zero" late penalty), one renamed by its student, and hostile entries
(``..``, an absolute path, a link, a PDF): reported by name, nothing written outside the
working folder, the rest graded."""
from __future__ import annotations

import csv
import os
import uuid
from pathlib import Path
from unittest import mock

import pytest

import lms_fixtures as fx
from grader import submissions
from grader.cli import main
from grader.mistakes import demo_mistakes

pytestmark = pytest.mark.slow

A, NB = "03-dropout", "dropout"
DUE = "2026-03-02T12:00:00Z"
ON_TIME, LATE = (2026, 3, 1, 9, 0, 0), (2026, 3, 3, 8, 0, 0)


def _notebooks():
    return {
        "complete": fx.notebook_bytes(submissions.complete(A, NB)),
        "untouched": fx.notebook_bytes(submissions.untouched(A, NB)),
        "mistakes": fx.notebook_bytes(submissions.with_mistakes(A, NB, list(demo_mistakes(A).values()))),
    }


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def _grade(base: Path, lms_name: str, zip_path: Path, roster: Path) -> Path:
    work = base / "work"
    before = _files(base)
    env = {"GRADER_LATE_PENALTY": "zero", "GRADER_CELL_TIMEOUT": "60"}
    with mock.patch.dict(os.environ, env):  # restored afterwards, even on failure
        status = main(["autograde", "--lms", lms_name, str(zip_path), "--roster", str(roster),
                       "--due", f"{A}={DUE}", "--workdir", str(work), "--workers", "2", "--no-feedback"])
    assert status == 0
    # nothing outside the working folder changed
    assert {p for p in _files(base) - before if not p.is_relative_to(work)} == set()
    assert not any("evil" in p.name for p in _files(base))
    return work


def _gradebook(work: Path) -> dict[str, dict]:
    """{student id: names, email, lms id, score after the late penalty} read with nbgrader's API."""
    from nbgrader.api import Gradebook, MissingEntry

    out = {}
    with Gradebook(f"sqlite:///{work / 'gradebook.db'}") as gb:
        for s in gb.students:
            try:
                sub = gb.find_submission(A, s.id)
                raw, penalty = sub.score, sub.late_submission_penalty
            except MissingEntry:
                raw = penalty = None
            out[s.id] = {"first": s.first_name, "last": s.last_name, "email": s.email, "lms": s.lms_user_id,
                         "raw": raw, "penalty": penalty,
                         "score": None if raw is None else max(0.0, raw - penalty)}
        max_score = gb.find_assignment(A).max_score
    return out, max_score


def _read(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def _num(cell: str) -> float:
    return float(cell)


@pytest.fixture(scope="module")
def canvas(tmp_path_factory):
    base = tmp_path_factory.mktemp("canvas")
    nbs = _notebooks()
    marker = f"evil-{uuid.uuid4().hex[:8]}"
    z = fx.write_zip(base / "submissions.zip", [
        # Ada resubmitted: Canvas numbered the second upload dropout-1.ipynb
        (fx.canvas_name("lovelaceada", 1001, 5001, "dropout.ipynb"), nbs["untouched"], ON_TIME),
        (fx.canvas_name("lovelaceada", 1001, 5001, "dropout-1.ipynb"), nbs["complete"], ON_TIME),
        (fx.canvas_name("obrienjrpatthemanr", 1002, 5002, "dropout.ipynb"), nbs["mistakes"], ON_TIME),
        (fx.canvas_name("李雷", 1003, 5003, "dropout.ipynb", late=True), nbs["complete"], LATE),
        (fx.canvas_name("renamedrita", 1004, 5004, "dropout (1).ipynb"), nbs["complete"], ON_TIME),
        (f"../../{marker}_1005_5005_dropout.ipynb", nbs["complete"]),
        (f"/tmp/{marker}_1006_5006_dropout.ipynb", nbs["complete"]),
        ("linky_1007_5007_dropout.ipynb", b"/etc/passwd", ON_TIME, 0o120777),
        (fx.canvas_name("lovelaceada", 1001, 5001, "notes.pdf"), b"%PDF-1.4", ON_TIME),
    ])
    students = [("Lovelace, Ada", "1001", "S1001", "ada", "Sec 1"),
                ("O'Brien, Jr., Pat \"The Man\"", "1002", "S1002", "pat", "Sec 1"),
                ("李, 雷", "1003", "S1003", "lilei", "Sec 2"),
                ("Renamed, Rita", "1004", "S1004", "rita", "Sec 2"),
                ("Student, Test", "9999", "", "", "")]
    gradebook_csv = base / "canvas-gradebook.csv"
    gradebook_csv.write_text(fx.canvas_gradebook(students, {"Homework 0 (70)": "", "Dropout (77)": ""},
                                                 {"Homework 0 (70)": "5", "Dropout (77)": "17"}),
                             encoding="utf-8")
    work = _grade(base, "canvas", z, gradebook_csv)
    assert main(["export", "--lms", "canvas", "--workdir", str(work), "--template", str(gradebook_csv),
                 "--out", str(base / "upload.csv")]) == 0
    assert main(["export", "--lms", "canvas", "--workdir", str(work), "--out", str(base / "fresh.csv")]) == 0
    return {"base": base, "work": work, "template": gradebook_csv, "marker": marker}


def test_canvas_class_is_graded_and_problems_named(canvas):
    gb, max_score = _gradebook(canvas["work"])
    assert gb["canvas-1001"]["raw"] == max_score > 0  # the resubmission, not the untouched first upload
    assert 0 < gb["canvas-1002"]["raw"] < max_score
    assert gb["canvas-1003"]["raw"] == max_score and gb["canvas-1003"]["score"] == 0  # late: zero
    assert gb["canvas-1004"]["raw"] is None  # renamed: not graded
    # real names and Canvas ids in the gradebook (formgrader shows them)
    assert (gb["canvas-1002"]["first"], gb["canvas-1002"]["last"], gb["canvas-1002"]["lms"]) == \
        ("Jr., Pat \"The Man\"", "O'Brien", "1002")
    assert (gb["canvas-1003"]["first"], gb["canvas-1003"]["last"]) == ("雷", "李")
    problems = (canvas["work"] / "problems.txt").read_text()
    for entry, words in [("lovelaceada_1001_5001_dropout.ipynb", "the latest resubmission"),
                         ("renamedrita_1004_5004_dropout (1).ipynb", "not a notebook of this course"),
                         (f"../../{canvas['marker']}_1005_5005_dropout.ipynb", "'..'"),
                         (f"/tmp/{canvas['marker']}_1006_5006_dropout.ipynb", "an absolute path"),
                         ("linky_1007_5007_dropout.ipynb", "a symbolic link"),
                         ("lovelaceada_1001_5001_notes.pdf", "not a notebook")]:
        line = next((p for p in problems.splitlines() if p.startswith(repr(entry))), "")
        assert words in line, (entry, problems)
    assert not Path(f"/tmp/{canvas['marker']}_1006_5006_dropout.ipynb").exists()
    mapping = (canvas["work"] / "lms.json").read_text(encoding="utf-8")
    assert '"late": true' in mapping and '"submission_id": "5003"' in mapping


def test_canvas_export_matches_the_gradebook_cell_for_cell(canvas):
    gb, max_score = _gradebook(canvas["work"])
    template, rows = _read(canvas["template"]), _read(canvas["base"] / "upload.csv")
    assert rows[0] == template[0] and len(rows) == len(template)
    col = rows[0].index("Dropout (77)")
    for before, after in zip(template[1:], rows[1:]):
        # every row, id and column of the template kept; only the course's column filled
        assert [c for i, c in enumerate(after) if i != col] == [c for i, c in enumerate(before) if i != col]
        student = f"canvas-{after[1]}"
        if after[0].strip() == "Points Possible":
            assert after[col] == "17"
        elif gb.get(student, {}).get("score") is not None:
            assert _num(after[col]) == pytest.approx(gb[student]["score"]), after
        else:
            assert after[col] == before[col] == "", after
    graded = {f"canvas-{r[1]}" for r in rows[2:] if r[col]}
    assert graded == {s for s, v in gb.items() if v["score"] is not None} == {"canvas-1001", "canvas-1002",
                                                                              "canvas-1003"}
    fresh = _read(canvas["base"] / "fresh.csv")
    assert fresh[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", A]
    assert fresh[1][0].strip() == "Points Possible" and _num(fresh[1][5]) == max_score
    by_id = {r[1]: r for r in fresh[2:]}
    assert set(by_id) == {"1001", "1002", "1003"}
    assert by_id["1002"][:5] == ["O'Brien, Jr., Pat \"The Man\"", "1002", "S1002", "pat", "Sec 1"]
    assert by_id["1003"][0] == "李, 雷"
    for uid, row in by_id.items():
        assert _num(row[5]) == pytest.approx(gb[f"canvas-{uid}"]["score"])


@pytest.fixture(scope="module")
def moodle(tmp_path_factory):
    base = tmp_path_factory.mktemp("moodle")
    nbs = _notebooks()
    z = fx.write_zip(base / "submissions.zip", [
        (fx.moodle_name("Ada Lovelace", 300001, "dropout.ipynb"), nbs["complete"], ON_TIME),
        (fx.moodle_name("Pat \"The Man\" O'Brien, Jr.", 300002, "dropout.ipynb", folders=False),
         nbs["mistakes"], ON_TIME),
        (fx.moodle_name("Лев Толстой", 300003, "dropout.ipynb"), nbs["complete"], ON_TIME),
        (fx.moodle_name("Rita Renamed", 300004, "Dropout_final.ipynb"), nbs["complete"], ON_TIME),
        (fx.moodle_name("Ada Lovelace", 300001, "onlinetext.html", plugin="onlinetext"), b"<p>x</p>", ON_TIME),
        ("Evil_300005_assignsubmission_file_/../../../evil.ipynb", nbs["complete"]),
        ("Evil_300006_assignsubmission_file_/link.ipynb", b"/etc/passwd", ON_TIME, 0o120777),
    ])
    worksheet = base / "worksheet.csv"
    # Tolstoy's file time is on time, but Moodle recorded his submission after the due date
    worksheet.write_text(fx.moodle_worksheet([
        (300001, "Ada Lovelace", "ada@uni.example", "Sunday, 1 March 2026, 9:00 AM"),
        (300002, "Pat \"The Man\" O'Brien, Jr.", "pat@uni.example", "Sunday, 1 March 2026, 10:00 AM"),
        (300003, "Лев Толстой", "lev@uni.example", "Tuesday, 3 March 2026, 8:00 AM"),
        (300004, "Rita Renamed", "rita@uni.example", "Sunday, 1 March 2026, 9:00 AM")]), encoding="utf-8")
    work = _grade(base, "moodle", z, worksheet)
    template = base / "moodle-grades.csv"
    template.write_text(fx.moodle_gradebook([("Ada", "Lovelace", "A1", "ada@uni.example"),
                                             ("Pat \"The Man\"", "O'Brien, Jr.", "P2", "pat@uni.example"),
                                             ("Лев", "Толстой", "L3", "lev@uni.example"),
                                             ("Rita", "Renamed", "R4", "rita@uni.example")],
                                            ["Assignment: Dropout (Real)", "Quiz: Week 1 (Real)"]),
                        encoding="utf-8")
    assert main(["export", "--lms", "moodle", "--workdir", str(work), "--template", str(template),
                 "--out", str(base / "upload.csv")]) == 0
    assert main(["export", "--lms", "moodle", "--workdir", str(work), "--out", str(base / "fresh.csv")]) == 0
    return {"base": base, "work": work, "template": template}


def test_moodle_class_is_graded_and_problems_named(moodle):
    gb, max_score = _gradebook(moodle["work"])
    assert gb["ada@uni.example"]["raw"] == max_score > 0
    assert 0 < gb["pat@uni.example"]["raw"] < max_score
    assert gb["lev@uni.example"]["raw"] == max_score and gb["lev@uni.example"]["score"] == 0  # late
    assert gb["rita@uni.example"]["raw"] is None
    assert gb["lev@uni.example"]["last"] == "Лев Толстой" and gb["lev@uni.example"]["lms"] == "300003"
    problems = (moodle["work"] / "problems.txt").read_text()
    for entry, words in [("Rita Renamed_300004_assignsubmission_file_/Dropout_final.ipynb", "not a notebook of"),
                         ("Ada Lovelace_300001_assignsubmission_onlinetext_/onlinetext.html", "not a notebook"),
                         ("Evil_300005_assignsubmission_file_/../../../evil.ipynb", "'..'"),
                         ("Evil_300006_assignsubmission_file_/link.ipynb", "a symbolic link")]:
        line = next((p for p in problems.splitlines() if p.startswith(repr(entry))), "")
        assert words in line, (entry, problems)


def test_moodle_export_matches_the_gradebook_cell_for_cell(moodle):
    gb, _ = _gradebook(moodle["work"])
    template, rows = _read(moodle["template"]), _read(moodle["base"] / "upload.csv")
    assert rows[0] == template[0] and len(rows) == len(template)
    col = rows[0].index("Assignment: Dropout (Real)")
    email = rows[0].index("Email address")
    for before, after in zip(template[1:], rows[1:]):
        assert [c for i, c in enumerate(after) if i != col] == [c for i, c in enumerate(before) if i != col]
        score = gb[after[email]]["score"]
        if score is None:
            assert after[col] == before[col] == "-"
        else:
            assert _num(after[col]) == pytest.approx(score)
    fresh = _read(moodle["base"] / "fresh.csv")
    assert fresh[0] == ["First name", "Last name", "ID number", "Email address", A]
    by_email = {r[3]: r for r in fresh[1:]}
    assert set(by_email) == {"ada@uni.example", "pat@uni.example", "lev@uni.example"}
    for address, row in by_email.items():
        assert _num(row[4]) == pytest.approx(gb[address]["score"])
    assert by_email["pat@uni.example"][1] == "Pat \"The Man\" O'Brien, Jr."
