"""The LMS zip importer (``grader.lms.unpack``), entry by entry: Canvas's and Moodle's
naming understood (see ``tests/lms_fixtures.py`` for the documented formats), every hostile
entry reported by name and skipped, the others unpacked, nothing written outside the
destination, a zip bomb stopped with bounded memory, a file that is not a zip refused; and
the export's CSV, its template handling and quoting, without nbgrader."""
from __future__ import annotations

import csv
import datetime as dt
import os
import time
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import pytest

import lms_fixtures as fx
from grader import lms, submissions

NB = fx.notebook_bytes(submissions.untouched("03-dropout", "dropout"))
NB01 = fx.notebook_bytes(submissions.untouched("01-bias-variance", "bias_variance"))


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def _unpack(tmp_path, lms_name, entries, roster=None):
    z = fx.write_zip(tmp_path / "download.zip", entries)
    dest = tmp_path / "work" / "submissions"
    return lms.unpack(z, lms_name, dest, roster), dest


def test_canvas_names_map_to_students_assignments_and_late_markers(tmp_path):
    """Canvas: lastfirst_userid_submissionid_file, LATE after the name, -N resubmissions."""
    out, dest = _unpack(tmp_path, "canvas", [
        (fx.canvas_name("lovelaceada", 1001, 5001, "dropout.ipynb"), NB, (2026, 3, 1, 9, 30, 0)),
        (fx.canvas_name("turingalan", 1002, 5002, "dropout.ipynb", late=True), NB, (2026, 3, 3, 8, 0, 0)),
        (fx.canvas_name("hopper", 1003, 5003, "bias_variance.ipynb"), NB01),
    ])
    assert out.problems == []
    assert _files(dest) == {"canvas-1001/03-dropout/dropout.ipynb", "canvas-1002/03-dropout/dropout.ipynb",
                            "canvas-1003/01-bias-variance/bias_variance.ipynb"}
    subs = {s.student: s for s in out.submissions}
    assert subs["canvas-1002"].late and not subs["canvas-1001"].late
    assert subs["canvas-1002"].submission_id == "5002"
    assert subs["canvas-1001"].time == "2026-03-01 09:30:00.000000 UTC"
    assert out.timestamps()[("canvas-1002", "03-dropout")].startswith("2026-03-03 08:00:00")
    assert out.students["canvas-1001"].lms_id == "1001"
    assert (dest / "canvas-1001/03-dropout/dropout.ipynb").read_bytes() == NB


def test_canvas_late_markers_that_disagree_with_the_due_date_are_reported(tmp_path):
    out, _ = _unpack(tmp_path, "canvas", [
        (fx.canvas_name("early", 1001, 5001, "dropout.ipynb", late=True), NB, (2026, 3, 1, 9, 0, 0)),
        (fx.canvas_name("late", 1002, 5002, "dropout.ipynb"), NB, (2026, 3, 3, 9, 0, 0)),
        (fx.canvas_name("agrees", 1003, 5003, "dropout.ipynb", late=True), NB, (2026, 3, 3, 9, 0, 0)),
    ])
    due = lms.parse_due(["03-dropout=2026-03-02T13:00:00+01:00"])
    assert due == {"03-dropout": dt.datetime(2026, 3, 2, 12, 0)}
    lines = lms.late_disagreements(out, due)
    assert len(lines) == 2
    assert lines[0].startswith("'early_LATE_1001_5001_dropout.ipynb': Canvas marks it late, but its time")
    assert lines[1].startswith("'late_1002_5002_dropout.ipynb': Canvas does not mark it late")
    with pytest.raises(lms.LmsError, match="ASSIGNMENT=DATE"):
        lms.parse_due(["99-nothing=2026-03-02"])


def test_canvas_resubmission_the_latest_is_graded_the_other_reported(tmp_path):
    old = NB.replace(b"YOUR CODE HERE", b"YOUR OLD CODE")
    out, dest = _unpack(tmp_path, "canvas", [
        (fx.canvas_name("lovelaceada", 1001, 5001, "dropout-1.ipynb"), NB),
        (fx.canvas_name("lovelaceada", 1001, 5001, "dropout.ipynb"), old),
    ])
    assert (dest / "canvas-1001/03-dropout/dropout.ipynb").read_bytes() == NB
    [problem] = out.problems
    assert "'lovelaceada_1001_5001_dropout.ipynb': a second notebook for 03-dropout" in problem
    assert "graded 'lovelaceada_1001_5001_dropout-1.ipynb', the latest resubmission" in problem


def test_moodle_folders_and_flat_names(tmp_path):
    """Moodle: Full Name_participantid_assignsubmission_file_/file, or flat without folders."""
    out, dest = _unpack(tmp_path, "moodle", [
        (fx.moodle_name("Ada Lovelace", 200001, "dropout.ipynb"), NB),
        (fx.moodle_name("Алан Тьюринг", 200002, "dropout.ipynb", folders=False), NB),
        (fx.moodle_name("Ada Lovelace", 200001, "onlinetext.html", plugin="onlinetext"), b"<p>hi</p>"),
    ])
    assert _files(dest) == {"moodle-200001/03-dropout/dropout.ipynb", "moodle-200002/03-dropout/dropout.ipynb"}
    assert out.students["moodle-200002"].last_name == "Алан Тьюринг"
    assert out.problems == ["'Ada Lovelace_200001_assignsubmission_onlinetext_/onlinetext.html': "
                            "not a notebook, not graded"]


def test_moodle_roster_gives_email_ids_names_and_submission_times(tmp_path):
    rows = lms.read_roster(_write(tmp_path / "ws.csv", fx.moodle_worksheet([
        (200001, "Ada Lovelace", "ada@uni.example", "2026-03-01T10:15:00+01:00"),
        (200002, "O'Brien, \"Pat\" 李", "Pat.OBrien@uni.example", "-"),
    ])))
    roster = lms.roster_students("moodle", rows)
    out, dest = _unpack(tmp_path, "moodle", [
        (fx.moodle_name("Ada Lovelace", 200001, "dropout.ipynb"), NB, (2026, 3, 5, 0, 0, 0)),
        (fx.moodle_name("O'Brien, \"Pat\" 李", 200002, "dropout.ipynb"), NB, (2026, 3, 2, 0, 0, 0)),
    ], roster)
    assert _files(dest) == {"ada@uni.example/03-dropout/dropout.ipynb",
                            "pat.obrien@uni.example/03-dropout/dropout.ipynb"}
    times = out.timestamps()
    # the worksheet's time wins over the file's; without one, the zip entry's time
    assert times[("ada@uni.example", "03-dropout")] == "2026-03-01 09:15:00.000000 UTC"
    assert times[("pat.obrien@uni.example", "03-dropout")] == "2026-03-02 00:00:00.000000 UTC"


def test_canvas_roster_reads_the_gradebook_export(tmp_path):
    text = fx.canvas_gradebook([("Lovelace, Ada", "1001", "S1", "ada", "A"), ("Student, Test", "9999", "", "", "")],
                               {"Dropout (77)": ""}, {"Dropout (77)": "17"})
    roster = lms.roster_students("canvas", lms.read_roster(_write(tmp_path / "gb.csv", text)))
    assert set(roster) == {"1001", "9999"}  # the Points Possible row is not a student
    ada = roster["1001"]
    assert (ada.id, ada.first_name, ada.last_name, ada.sis_user_id, ada.sis_login_id, ada.section) == \
        ("canvas-1001", "Ada", "Lovelace", "S1", "ada", "A")


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


HOSTILE = [
    # (entry name, data, date, unix mode), and the words its problem line must hold
    (("../../evil_1_2_dropout.ipynb", NB), "a '..' in its path"),
    (("x_1_2_/../../../dropout.ipynb", NB), "a '..' in its path"),
    (("/etc/cron.d/evil_1_2_dropout.ipynb", NB), "an absolute path"),
    (("C:\\evil_1_2_dropout.ipynb", NB), "an absolute path"),
    (("..\\..\\evil_1_2_dropout.ipynb", NB), "a '..' in its path"),
    (("linky_1003_5003_dropout.ipynb", b"/work/solutions/03-dropout/dropout.ipynb",
      (2026, 3, 1, 0, 0, 0), 0o120777), "a symbolic link"),
    (("fifo_1004_5004_dropout.ipynb", b"", (2026, 3, 1, 0, 0, 0), 0o010644), "not a regular file"),
    (("renamed_1005_5005_dropout (2).ipynb", NB), "not a notebook of this course"),
    (("untitled_1006_5006_Untitled.ipynb", NB), "renamed notebook is not guessed at"),
    (("essay_1007_5007_answers.pdf", b"%PDF-1.4"), "not a notebook, not graded"),
    (("no-naming.ipynb", NB), "not Canvas's submission naming"),
    (("folder/deeper_1008_5008_dropout.ipynb", NB), "not Canvas's submission naming"),
    (("bad_1009_5009_dropout.ipynb", b"\x00" * 10), None),  # written; collect reports it as unreadable
]


def test_every_hostile_entry_is_reported_by_name_and_the_rest_unpacked(tmp_path):
    entries = [e for e, _ in HOSTILE] + [(fx.canvas_name("good", 1010, 5010, "dropout.ipynb"), NB)]
    # a duplicate name (zipfile warns while writing it)
    entries.append((fx.canvas_name("good", 1010, 5010, "dropout.ipynb"), b"second"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out, dest = _unpack(tmp_path, "canvas", entries)
    for (entry, *_), words in HOSTILE:
        if words is None:
            continue
        lines = [p for p in out.problems if p.startswith(lms.show(entry))]
        assert len(lines) == 1 and words in lines[0], (entry, out.problems)
    assert sum("a second entry of the same name" in p for p in out.problems) == 1
    assert len(out.problems) == len([h for h in HOSTILE if h[1]]) + 1
    assert _files(tmp_path / "work") == {"submissions/canvas-1010/03-dropout/dropout.ipynb",
                                         "submissions/canvas-1009/03-dropout/dropout.ipynb"}
    assert (dest / "canvas-1010/03-dropout/dropout.ipynb").read_bytes() == NB  # the first, not the duplicate
    assert not any(p.name.startswith("evil") for p in tmp_path.rglob("*"))
    assert not os.path.exists("/etc/cron.d/evil_1_2_dropout.ipynb")


def test_names_in_any_script_and_control_characters_give_safe_ids_and_printable_problems(tmp_path):
    out, dest = _unpack(tmp_path, "canvas", [
        (fx.canvas_name("李雷", 2001, 6001, "dropout.ipynb"), NB),
        (fx.canvas_name("محمد", 2002, 6002, "dropout.ipynb"), NB),
        (fx.canvas_name("evil\u202egpj", 2003, 6003, "x\x1b[31m.ipynb"), NB),
    ])
    assert _files(dest) == {"canvas-2001/03-dropout/dropout.ipynb", "canvas-2002/03-dropout/dropout.ipynb"}
    assert out.students["canvas-2001"].last_name == "李雷"
    [problem] = out.problems
    assert "\x1b" not in problem and "\u202e" not in problem and "not a notebook of this course" in problem


def test_non_utf8_names_from_old_zip_tools_are_still_mapped_by_their_ids(tmp_path):
    z = tmp_path / "cp437.zip"
    with zipfile.ZipFile(z, "w") as zf:
        fx.add(zf, "placeholder_3001_7001_dropout.ipynb", NB)
    raw = z.read_bytes().replace(b"placeholder", "Müller-é~".encode("latin-1") + b"xx")
    z.write_bytes(raw)
    out = lms.unpack(z, "canvas", tmp_path / "subs")
    assert [s.student for s in out.submissions] == ["canvas-3001"]


def test_a_zip_bomb_is_refused_reading_bounded_memory(tmp_path):
    """Honest headers (a 100 MB entry, a 10 MB one compressed 1000:1) are refused before reading; a lying header (it claims
    a small size) is read no further than its claim: memory stays a few MB."""
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        bomb = zipfile.ZipInfo("bomb_4001_8001_dropout.ipynb")
        bomb.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(bomb, "w", force_zip64=True) as f:
            block = b"\0" * 2**20
            for _ in range(100):
                f.write(block)
        fx.add(zf, "ratio_4004_8004_dropout.ipynb", b"[" * (10 * 2**20))
        info = zipfile.ZipInfo("liar_4002_8002_dropout.ipynb")
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, b"{" * (8 * 2**20))
        fx.add(zf, fx.canvas_name("good", 4003, 8003, "dropout.ipynb"), NB)
    # the liar's central-directory entry claims 4000 bytes instead of 8 MiB
    raw = bytearray(z.read_bytes())
    cd = raw.rfind(b"PK\x01\x02", 0, raw.rfind(b"liar_4002") + 1)
    raw[cd + 24: cd + 28] = (4000).to_bytes(4, "little")
    z.write_bytes(bytes(raw))
    assert z.stat().st_size < 2 * 2**20
    tracemalloc.start()
    start = time.perf_counter()
    try:
        out = lms.unpack(z, "canvas", tmp_path / "subs")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - start
    assert peak < 8 * 2**20, peak
    assert elapsed < 10, elapsed
    assert out.bytes_read < 2 * 2**20, out.bytes_read
    problems = "\n".join(out.problems)
    assert "'bomb_4001_8001_dropout.ipynb': 104857600 bytes, over the" in problems
    assert "'ratio_4004_8004_dropout.ipynb': compressed more than 200:1" in problems
    assert "'liar_4002_8002_dropout.ipynb': cannot be read (BadZipFile)" in problems
    assert [s.student for s in out.submissions] == ["canvas-4003"]


def test_the_total_size_limit_stops_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(lms, "MAX_TOTAL_BYTES", len(NB) + 10)
    out, dest = _unpack(tmp_path, "canvas", [
        (fx.canvas_name(f"s{i}", 5000 + i, 9000 + i, "dropout.ipynb"), NB) for i in range(3)])
    assert len(out.submissions) == 1
    assert sum("total size limit" in p for p in out.problems) == 2


@pytest.mark.parametrize("limit", ["MAX_ENTRIES", "MAX_DIRECTORY_BYTES"])
def test_a_zip_with_too_many_entries_is_refused_before_its_directory_is_read(tmp_path, monkeypatch, limit):
    monkeypatch.setattr(lms, limit, 3 if limit == "MAX_ENTRIES" else 200)
    read = []
    monkeypatch.setattr(zipfile.ZipFile, "_RealGetContents", lambda self: read.append(1))
    with pytest.raises(lms.LmsError, match="over the limits"):
        _unpack(tmp_path, "canvas", [
            (fx.canvas_name(f"s{i}", 5000 + i, 9000 + i, "dropout.ipynb"), NB) for i in range(4)])
    assert read == []


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04truncated", NB])
def test_a_file_that_is_not_a_zip_is_refused_with_a_message(tmp_path, content):
    z = tmp_path / "download.zip"
    z.write_bytes(content)
    with pytest.raises(lms.LmsError, match="not a zip file"):
        lms.unpack(z, "canvas", tmp_path / "subs")
    assert not (tmp_path / "subs").exists()


def test_the_destination_is_made_anew(tmp_path):
    dest = tmp_path / "subs" / "ghost" / "03-dropout"
    dest.mkdir(parents=True)
    (dest / "dropout.ipynb").write_bytes(NB)
    z = fx.write_zip(tmp_path / "d.zip", [(fx.canvas_name("a", 1, 2, "dropout.ipynb"), NB)])
    lms.unpack(z, "canvas", tmp_path / "subs")
    assert _files(tmp_path / "subs") == {"canvas-1/03-dropout/dropout.ipynb"}


# ---------------------------------------------------------------- export, without nbgrader


ROWS = [
    lms.GradebookRow("canvas-1001", "Ada", "Lovelace", "", "1001", {"03-dropout": 17.0}),
    lms.GradebookRow("canvas-1002", "Pat \"The Man\"", "O'Brien, Jr.", "", "1002", {"03-dropout": 4.5}),
    lms.GradebookRow("canvas-1003", "雷", "李", "", "1003", {}),
]


@pytest.fixture
def fake_gradebook(tmp_path, monkeypatch):
    (tmp_path / "gradebook.db").write_text("")
    monkeypatch.setattr(lms, "gradebook_rows", lambda url: (ROWS, {"03-dropout": 17.0}))
    return tmp_path


def _read(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_canvas_export_without_a_template(fake_gradebook):
    out = fake_gradebook / "canvas.csv"
    assert lms.export("canvas", fake_gradebook, out) == []
    rows = _read(out)
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "03-dropout"]
    assert rows[1] == ["    Points Possible", "", "", "", "", "17"]
    assert rows[2] == ["Lovelace, Ada", "1001", "", "", "", "17"]
    assert rows[3] == ["O'Brien, Jr., Pat \"The Man\"", "1002", "", "", "", "4.5"]
    assert len(rows) == 4  # 1003 submitted nothing
    assert '"O\'Brien, Jr., Pat ""The Man"""' in out.read_text(encoding="utf-8")


def test_canvas_export_keeps_every_template_row_column_and_id(fake_gradebook):
    template = fake_gradebook / "gb.csv"
    template.write_text(fx.canvas_gradebook(
        [("Lovelace, Ada", "1001", "S1", "ada", "Sec, A"), ("李, 雷", "1003", "S3", "li", "B"),
         ("Student, Test", "9999", "", "", "")],
        {"Homework 0 (70)": "", "Dropout (77)": ""}, {"Homework 0 (70)": "5", "Dropout (77)": "17"}),
        encoding="utf-8")
    before = _read(template)
    out = fake_gradebook / "canvas.csv"
    problems = lms.export("canvas", fake_gradebook, out, template)
    rows = _read(out)
    assert rows[0] == before[0]
    assert [r[:5] for r in rows[:len(before)]] == [r[:5] for r in before]
    col = rows[0].index("Dropout (77)")
    assert rows[2][col] == "17" and rows[3][col] == "" and rows[4][col] == ""
    assert rows[1] == before[1]
    # Pat was not in the template: added at the end, and said so
    assert rows[-1][:2] == ["O'Brien, Jr., Pat \"The Man\"", "1002"] and rows[-1][col] == "4.5"
    assert problems == ["canvas-1002: not in the template, added as a new row"]


def test_moodle_export_is_keyed_by_email(fake_gradebook, monkeypatch):
    rows = [lms.GradebookRow("ada@uni.example", "", "Ada Lovelace", "Ada@Uni.example", "200001", {"03-dropout": 17.0}),
            lms.GradebookRow("moodle-200009", "", "No Roster", "", "200009", {"03-dropout": 3.0})]
    monkeypatch.setattr(lms, "gradebook_rows", lambda url: (rows, {"03-dropout": 17.0}))
    template = fake_gradebook / "moodle.csv"
    template.write_text(fx.moodle_gradebook([("Ada", "Lovelace", "A1", "ada@uni.example"),
                                             ("Лев", "Толстой", "L2", "lev@uni.example")],
                                            ["Assignment: Dropout (Real)"]), encoding="utf-8")
    out = fake_gradebook / "out.csv"
    problems = lms.export("moodle", fake_gradebook, out, template)
    got = _read(out)
    col = got[0].index("Assignment: Dropout (Real)")
    assert got[1][5] == "ada@uni.example" and got[1][col] == "17"
    assert got[2][:2] == ["Лев", "Толстой"] and got[2][col] == "-"
    assert problems == ["moodle-200009: no Email address known (not from an LMS download, or graded "
                        "without a --roster), not exported"]


@pytest.mark.parametrize("header,assignment,hit", [
    ("Dropout (77)", "03-dropout", True), ("03-dropout (77)", "03-dropout", True),
    ("Assignment: 03 Dropout (Real)", "03-dropout", True), ("Bias variance (1)", "01-bias-variance", True),
    ("Dropout quiz (78)", "03-dropout", False), ("Current Score", "03-dropout", False)])
def test_template_columns_are_matched_by_title(header, assignment, hit):
    assert (lms.matching_column([header], assignment) == header) is hit


def test_roster_that_is_not_utf8_or_has_no_id_column_is_refused(tmp_path):
    bad = tmp_path / "r.csv"
    bad.write_bytes("Student,ID\nM\xfcller,1\n".encode("latin-1"))
    with pytest.raises(lms.LmsError, match="not UTF-8"):
        lms.read_roster(bad)
    with pytest.raises(lms.LmsError, match="Student and ID"):
        lms.roster_students("canvas", [{"Name": "x"}])
    with pytest.raises(lms.LmsError, match="Identifier"):
        lms.roster_students("moodle", [{"Name": "x"}])

