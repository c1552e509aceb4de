"""Grades in and out of an LMS: Canvas's and Moodle's submission downloads in, their
gradebook import files out.

``python -m grader autograde --lms canvas|moodle ZIP [--roster CSV]`` unpacks the zip that
Canvas's *Download Submissions* or Moodle's *Download all submissions* produces into
``WORKDIR/submissions/<student>/<assignment>/<notebook>.ipynb`` (the layout
``grader.collect`` reads), keeps who submitted what and when in ``WORKDIR/lms.json``, and
grades it like any class. ``python -m grader export --lms canvas|moodle --out FILE`` writes
the gradebook file the LMS imports.

The zip is hostile. It is never extracted as it stands: entries are read one by one, with
limits on their number, on each notebook's size, on the total and on the compression ratio
(a zip bomb is stopped after reading at most a limit's worth of bytes); entries with ``..``,
absolute paths, links, devices, encryption, duplicate names, or names that are not the
LMS's are reported by name and skipped. Nothing is written at a path the zip names: a
notebook is written as ``<student id>/<assignment>/<the course's notebook name>``, where
the student id is made here from the LMS's numeric id (``canvas-12345``,
``moodle-<participant id>``) or the roster's email address, so it is a valid nbgrader id
and stays the same when the student resubmits.

Naming, as the LMSs write it:

* Canvas: one flat file per submitted file, ``<lastfirst>_<userid>_<submissionid>_<file>``,
  with ``LATE`` after the name for a late submission
  (``doejane_LATE_12345_678901_dropout.ipynb``) and ``-1``, ``-2`` ... before the extension
  when a student uploaded a file of the same name again (``dropout-1.ipynb``).
* Moodle (3.1+, "download submissions in folders", the default): a folder per student and
  plugin, ``<Full Name>_<participantid>_assignsubmission_file_/<file>``; without folders,
  ``<Full Name>_<participantid>_assignsubmission_file_<file>``. The participant id is
  Moodle's per-assignment identifier; the roster (Moodle's grading worksheet) maps it to
  the student's email address, the key of Moodle's grade import.

A file is matched to an assignment by its name: the course's notebook names
(``dropout.ipynb`` is 03-dropout), after removing Canvas's resubmission suffix. A renamed
notebook (``dropout (2).ipynb``, ``Untitled.ipynb``) is not guessed at: it is reported in
``problems.txt`` with the names expected, so the student can be told. Two notebooks of one
student for one assignment: the latest resubmission (highest suffix) is graded, the others
are reported.
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import re
import stat
import unicodedata
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .collect import MAX_NOTEBOOK_BYTES, STUDENT_NAME, course_notebooks
from .paths import assignments

LMS_NAMES = ("canvas", "moodle")
MAX_ENTRIES = 10_000                 # entries in one zip
MAX_DIRECTORY_BYTES = 8 * 2**20      # its central directory (what zipfile holds in memory)
MAX_TOTAL_BYTES = 1 * 2**30          # uncompressed bytes read from one zip
MAX_RATIO = 200                      # uncompressed / compressed size of one entry
CHUNK = 1 << 16

CANVAS_ENTRY = re.compile(r"^(?P<name>[^_/]*?)(?:_(?P<late>LATE))?_(?P<uid>\d+)_(?P<sub>\d+)_(?P<file>[^/]+)$")
MOODLE_ENTRY = re.compile(r"^(?P<name>[^_/]+)_(?P<pid>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<rest>.+)$")
RESUBMISSION = re.compile(r"^(?P<stem>.+?)(?:-(?P<n>\d+))?\.ipynb$")
POINTS_POSSIBLE = "Points Possible"


class LmsError(SystemExit):
    """The zip or a roster cannot be used at all (not a zip, no usable columns)."""


def show(name: str) -> str:
    """An entry name as it can be printed and written safely: no control characters."""
    return repr("".join(ch if ch.isprintable() else "?" for ch in name)[:160])


def notebook_assignments() -> dict[str, str]:
    """{notebook file name: assignment} for the whole course."""
    return {nb: a for a in assignments() for nb in course_notebooks(a)}


@dataclass
class Student:
    id: str                    # the nbgrader student id
    lms_id: str                # Canvas user id, or Moodle participant id
    name: str = ""             # as the LMS shows it (Canvas: "Last, First")
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""
    id_number: str = ""
    submitted: str = ""        # a roster's submission time, if it has one


@dataclass
class Submission:
    student: str
    assignment: str
    notebook: str
    entry: str
    submission_id: str = ""
    time: str = ""             # UTC, as nbgrader's timestamp.txt holds it
    late: bool = False         # the LMS's own late marker (Canvas)
    resubmission: int = 0


@dataclass
class Unpacked:
    lms: str
    students: dict[str, Student] = field(default_factory=dict)
    submissions: list[Submission] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    bytes_read: int = 0

    def timestamps(self) -> dict[tuple[str, str], str]:
        return {(s.student, s.assignment): s.time for s in self.submissions if s.time}

    def write_mapping(self, path: Path) -> None:
        data = {"lms": self.lms,
                "students": {k: asdict(v) for k, v in sorted(self.students.items())},
                "submissions": [asdict(s) for s in self.submissions]}
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def read_mapping(workdir: Path) -> dict:
    path = Path(workdir) / "lms.json"
    if not path.exists():
        return {"lms": None, "students": {}, "submissions": []}
    return json.loads(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- the roster


def _clean_cell(text) -> str:
    return "".join(ch for ch in str(text or "") if ch.isprintable()).strip()


def read_roster(path: Path) -> list[dict[str, str]]:
    """The rows of a roster CSV (UTF-8, a BOM allowed) as dicts of printable text."""
    raw = Path(path).read_bytes()
    if len(raw) > 64 * 2**20:
        raise LmsError(f"{path}: over 64 MiB, not a roster")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LmsError(f"{path}: not UTF-8 text (export the roster from the LMS as UTF-8 CSV)")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        raise LmsError(f"{path}: empty roster")
    return [{_clean_cell(k): _clean_cell(v) for k, v in row.items() if k is not None} for row in reader]


def _split_name(name: str) -> tuple[str, str]:
    """(first, last) from Canvas's sortable "Last, First"; otherwise the whole name as last."""
    if ", " in name:
        last, first = name.split(", ", 1)
        return first, last
    return "", name


def email_id(email: str) -> str | None:
    email = email.strip().lower()
    return email if email and STUDENT_NAME.match(email) else None


def roster_students(lms: str, rows: list[dict[str, str]]) -> dict[str, Student]:
    """{LMS id: Student} from a roster. Canvas: its gradebook export (Student, ID, SIS User
    ID, SIS Login ID, Section). Moodle: its grading worksheet (Identifier "Participant N",
    Full name, Email address, ID number, Last modified (submission))."""
    out: dict[str, Student] = {}
    if lms == "canvas":
        if rows and not {"Student", "ID"} <= set(rows[0]):
            raise LmsError("the Canvas roster needs the columns Student and ID (Canvas's gradebook export)")
        for row in rows:
            uid = row.get("ID", "")
            if not uid.isdigit() or row.get("Student", "").strip() == POINTS_POSSIBLE:
                continue
            first, last = _split_name(row.get("Student", ""))
            out[uid] = Student(f"canvas-{uid}", uid, row.get("Student", ""), first, last,
                               sis_user_id=row.get("SIS User ID", ""),
                               sis_login_id=row.get("SIS Login ID", ""), section=row.get("Section", ""))
        return out
    if rows and "Identifier" not in rows[0]:
        raise LmsError("the Moodle roster needs the columns Identifier, Full name and Email address "
                       "(Moodle's grading worksheet: Assignment > View all submissions > "
                       "Download grading worksheet)")
    for row in rows:
        match = re.search(r"(\d+)\s*$", row.get("Identifier", ""))
        if not match:
            continue
        pid = match.group(1)
        email = row.get("Email address", "")
        sid = email_id(email) or f"moodle-{pid}"
        name = row.get("Full name", "")
        out[pid] = Student(sid, pid, name, "", name, email=email, id_number=row.get("ID number", ""),
                           submitted=row.get("Last modified (submission)", ""))
    return out


# ---------------------------------------------------------------- the zip


def _is_link_or_special(info: zipfile.ZipInfo) -> str | None:
    mode = info.external_attr >> 16
    if info.create_system == 3 and mode:  # Unix
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFLNK:
            return "a symbolic link"
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            return "not a regular file (a device, a pipe or a socket)"
    return None


def _unsafe_path(name: str) -> str | None:
    if "\x00" in name:
        return "a NUL byte in its name"
    path = name.replace("\\", "/")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return "an absolute path"
    if any(part == ".." for part in path.split("/")):
        return "a '..' in its path"
    return None


def _entry_time(info: zipfile.ZipInfo) -> str:
    try:
        when = _dt.datetime(*info.date_time, tzinfo=_dt.timezone.utc)
    except ValueError:
        return ""
    return when.strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def _roster_time(text: str) -> str:
    if not text or text in ("-", "No submission"):
        return ""
    from dateutil import parser as dateparser

    try:
        when = dateparser.parse(text)
    except (ValueError, OverflowError):
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    return when.astimezone(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def _read_bounded(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> tuple[bytes | None, int, str]:
    """The entry's bytes, reading at most ``min(MAX_NOTEBOOK_BYTES, budget) + 1`` of them and
    stopping at the ratio limit. Returns (data or None, bytes read, why not)."""
    limit = min(MAX_NOTEBOOK_BYTES, budget)
    allowed = min(limit, MAX_RATIO * max(info.compress_size, 1))
    chunks, got = [], 0
    try:
        with zf.open(info) as f:
            while True:
                chunk = f.read(CHUNK)
                if not chunk:
                    break
                got += len(chunk)
                if got > allowed:
                    why = (f"over the {MAX_NOTEBOOK_BYTES} byte limit for a notebook" if got > MAX_NOTEBOOK_BYTES
                           else "over the zip's total size limit" if got > budget
                           else f"compressed more than {MAX_RATIO}:1 (a zip bomb?)")
                    return None, got, why
                chunks.append(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError,
            RuntimeError) as exc:
        return None, got, f"cannot be read ({type(exc).__name__})"
    except Exception as exc:  # zlib.error and friends: a corrupt entry costs itself only
        return None, got, f"cannot be read ({type(exc).__name__})"
    return b"".join(chunks), got, ""


def _check_directory(zip_path: Path, lms: str) -> None:
    """Refuse, before ``zipfile`` reads it into memory, a central directory over the limits:
    memory stays bounded whatever the zip declares."""
    try:
        with open(zip_path, "rb") as f:
            end = zipfile._EndRecData(f)
    except OSError as exc:
        raise LmsError(f"{zip_path}: cannot be read ({exc.strerror})")
    if end is None:
        raise LmsError(f"{zip_path}: not a zip file (no end of central directory); download the "
                       f"submissions again from {lms.capitalize()}")
    entries, size = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]
    if entries > MAX_ENTRIES or size > MAX_DIRECTORY_BYTES:
        raise LmsError(f"{zip_path}: {entries} entries ({size} bytes of directory), over the limits of "
                       f"{MAX_ENTRIES} entries and {MAX_DIRECTORY_BYTES} bytes: not read (a class's "
                       "download is far smaller; split it by assignment or section)")


def _parse(lms: str, name: str):
    """(lms id, display name, file name, submission id, late) or None."""
    if lms == "canvas":
        m = CANVAS_ENTRY.match(name)
        if not m:
            return None
        return m["uid"], m["name"], m["file"], m["sub"], bool(m["late"])
    m = MOODLE_ENTRY.match(name)
    if not m:
        return None
    rest = m["rest"]
    if rest.startswith("/"):
        rest = rest.rsplit("/", 1)[-1]
    elif "/" in rest:
        return None
    if m["plugin"] != "file":
        return m["pid"], m["name"], "", "", False
    return m["pid"], m["name"], rest, "", False


def unpack(zip_path: Path, lms: str, dest: Path, roster: dict[str, Student] | None = None) -> Unpacked:
    """Write the zip's notebooks to ``dest/<student>/<assignment>/<notebook>.ipynb`` (``dest``
    is made anew). Every entry that is not graded is reported in ``Unpacked.problems``."""
    import shutil

    if lms not in LMS_NAMES:
        raise LmsError(f"unknown LMS {lms!r} (one of {', '.join(LMS_NAMES)})")
    roster = roster or {}
    out = Unpacked(lms)
    known = notebook_assignments()
    _check_directory(Path(zip_path), lms)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise LmsError(f"{zip_path}: not a zip file ({type(exc).__name__}); download the submissions "
                       f"again from {lms.capitalize()}")
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    chosen: dict[tuple[str, str], tuple[int, Submission, bytes]] = {}
    seen: set[str] = set()
    with zf:
        for info in zf.infolist():
            name = info.filename
            label = show(name)
            if name.endswith("/") or info.is_dir():
                continue
            why = _unsafe_path(name) or _is_link_or_special(info)
            if why:
                out.problems.append(f"{label}: {why}, not graded")
                continue
            key = unicodedata.normalize("NFC", name.replace("\\", "/")).casefold()
            if key in seen:
                out.problems.append(f"{label}: a second entry of the same name, not graded")
                continue
            seen.add(key)
            if info.flag_bits & 0x1:
                out.problems.append(f"{label}: encrypted, not graded")
                continue
            parsed = _parse(lms, name)
            if parsed is None:
                out.problems.append(f"{label}: not {lms.capitalize()}'s submission naming, not graded")
                continue
            lms_id, display, filename, submission_id, late = parsed
            if not filename.endswith(".ipynb"):
                out.problems.append(f"{label}: not a notebook, not graded")
                continue
            m = RESUBMISSION.match(filename)
            notebook = f"{m['stem']}.ipynb" if m else filename
            if notebook not in known:
                out.problems.append(f"{label}: not a notebook of this course (expected one of "
                                    f"{', '.join(sorted(known))}; a renamed notebook is not guessed at: "
                                    "ask the student to submit it under its original name)")
                continue
            if info.file_size > MAX_NOTEBOOK_BYTES:
                out.problems.append(f"{label}: {info.file_size} bytes, over the {MAX_NOTEBOOK_BYTES} byte "
                                    "limit for a notebook, not graded")
                continue
            if info.file_size > MAX_RATIO * max(info.compress_size, 1):
                out.problems.append(f"{label}: compressed more than {MAX_RATIO}:1 (a zip bomb?), not graded")
                continue
            budget = MAX_TOTAL_BYTES - out.bytes_read
            if budget <= 0:
                out.problems.append(f"{label}: the zip's total size limit ({MAX_TOTAL_BYTES} bytes) was "
                                    "reached, not graded")
                continue
            data, got, why = _read_bounded(zf, info, budget)
            out.bytes_read += got
            if data is None:
                out.problems.append(f"{label}: {why}, not graded")
                continue
            student = roster.get(lms_id) or Student(f"{lms}-{lms_id}", lms_id, display, "", display)
            out.students.setdefault(student.id, student)
            assignment = known[notebook]
            when = _roster_time(student.submitted) or _entry_time(info)
            sub = Submission(student.id, assignment, notebook[:-6], name, submission_id, when, late,
                             int(m["n"]) if m and m["n"] else 0)
            rank = sub.resubmission
            previous = chosen.get((student.id, notebook))
            if previous is not None:
                older, newer = sorted([previous, (rank, sub, data)], key=lambda t: t[0])
                out.problems.append(f"{show(older[1].entry)}: a second notebook for {assignment} of the same "
                                    f"student; graded {show(newer[1].entry)}, the latest resubmission")
                chosen[(student.id, notebook)] = newer
            else:
                chosen[(student.id, notebook)] = (rank, sub, data)
    for (sid, notebook), (_, sub, data) in sorted(chosen.items()):
        folder = dest / sid / sub.assignment
        folder.mkdir(parents=True, exist_ok=True)
        (folder / notebook).write_bytes(data)
        out.submissions.append(sub)
    return out


# ---------------------------------------------------------------- grading


def parse_due(items: list[str]) -> dict[str, _dt.datetime]:
    """``ASSIGNMENT=WHEN`` (ISO 8601; UTC unless it names a zone) -> {assignment: datetime}."""
    from dateutil import parser as dateparser

    out = {}
    for item in items or []:
        assignment, _, when = item.partition("=")
        if assignment not in assignments() or not when:
            raise LmsError(f"--due {item!r}: expected ASSIGNMENT=DATE with an assignment of this course "
                           f"({', '.join(assignments())})")
        moment = dateparser.parse(when)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=_dt.timezone.utc)
        out[assignment] = moment.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    return out


def late_disagreements(unpacked: Unpacked, due: dict[str, _dt.datetime]) -> list[str]:
    """Submissions Canvas marked LATE whose recorded time is not after the due date given
    here, or the other way round: nbgrader's penalty follows the time, the instructor is told."""
    from dateutil import parser as dateparser

    out = []
    if unpacked.lms != "canvas":
        return out
    for sub in unpacked.submissions:
        if sub.assignment not in due or not sub.time:
            continue
        late = dateparser.parse(sub.time).replace(tzinfo=None) > due[sub.assignment]
        if late != sub.late:
            out.append(f"{show(sub.entry)}: Canvas {'marks' if sub.late else 'does not mark'} it late, but its "
                       f"time ({sub.time}) is {'after' if late else 'not after'} the due date "
                       f"{due[sub.assignment]:%Y-%m-%d %H:%M} UTC given here: graded by its time "
                       "(check the due date and the time zone)")
    return out


def name_students(db_url: str, students: dict[str, Student]) -> None:
    """Names, email and LMS id into the gradebook, so that formgrader shows real names."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        for s in students.values():
            gb.update_or_create_student(s.id, first_name=s.first_name or None, last_name=s.last_name or None,
                                        email=s.email or None, lms_user_id=s.lms_id or None)


def autograde_zip(zip_path: Path, lms: str, workdir: Path, roster_path: Path | None = None,
                  due: dict[str, _dt.datetime] | None = None, log=print, **kwargs):
    """Unpack an LMS download into ``workdir/submissions`` and grade it; returns the results."""
    from .autograde import autograde
    from .nbgrader_apps import gradebook_url

    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    roster = roster_students(lms, read_roster(roster_path)) if roster_path else {}
    unpacked = unpack(Path(zip_path), lms, workdir / "submissions", roster)
    students = dict(unpacked.students)
    for s in roster.values():  # the whole class, also those who submitted nothing
        students.setdefault(s.id, s)
    unpacked.students = students
    unpacked.write_mapping(workdir / "lms.json")
    log(f"{lms}: {len(unpacked.submissions)} notebook(s) of {len({s.student for s in unpacked.submissions})} "
        f"student(s) unpacked to {workdir / 'submissions'}; {len(unpacked.problems)} entr(y/ies) not graded")
    unpacked.problems += late_disagreements(unpacked, due or {})
    (workdir / "problems.txt").write_text("".join(p + "\n" for p in unpacked.problems))
    db_url = gradebook_url(workdir)
    for assignment, when in (due or {}).items():
        from .nbgrader_apps import nbgrader  # creates the gradebook if needed (alembic on PATH)

        nbgrader("db", "assignment", "add", assignment, f"--duedate={when.isoformat()} UTC", f"--db={db_url}")
    try:
        results = autograde(workdir / "submissions", workdir, log=log,
                            timestamps=unpacked.timestamps(), **kwargs)
    finally:
        collected = (workdir / "problems.txt").read_text() if (workdir / "problems.txt").exists() else ""
        lines = unpacked.problems + [p for p in collected.splitlines() if p and p not in unpacked.problems]
        (workdir / "problems.txt").write_text("".join(p + "\n" for p in lines))
        for problem in unpacked.problems:
            log(f"not graded: {problem}")
        if students and (not db_url.startswith("sqlite") or (workdir / "gradebook.db").exists()):
            name_students(db_url, students)
    return results


# ---------------------------------------------------------------- export


def _norm(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", unicodedata.normalize("NFKC", text).casefold())


def column_title(header: str) -> str:
    """A gradebook column's assignment title: Canvas's "Title (12345)", Moodle's
    "Assignment: Title (Real)" -> "Title"."""
    title = re.sub(r"\s*\(\d+\)\s*$", "", header)
    title = re.sub(r"^\s*Assignment:\s*", "", title)
    return re.sub(r"\s*\((Real|Percentage|Letter)\)\s*$", "", title).strip()


def matching_column(headers: list[str], assignment: str) -> str | None:
    """The template column that is this assignment: its title is the assignment's name
    (``03-dropout``, ``03 Dropout``) or its topic (``Dropout``), case and punctuation aside."""
    topic = assignment.split("-", 1)[1] if re.match(r"^\d+-", assignment) else assignment
    wanted = {_norm(assignment), _norm(topic)}
    hits = [h for h in headers if _norm(column_title(h)) in wanted]
    return hits[0] if hits else None


def _pts(x: float) -> str:
    return f"{round(x, 4):g}"


@dataclass
class GradebookRow:
    id: str
    first_name: str
    last_name: str
    email: str
    lms_user_id: str
    scores: dict[str, float]  # assignment -> score after the late penalty (submitted only)


def gradebook_rows(db_url: str) -> tuple[list[GradebookRow], dict[str, float]]:
    """Every student in the gradebook with their score per submitted assignment (nbgrader's
    late penalty subtracted, as ``nbgrader export`` does), and each assignment's max score."""
    from nbgrader.api import Gradebook, MissingEntry

    rows, maxima = [], {}
    with Gradebook(db_url) as gb:
        names = [a.name for a in gb.assignments]
        for a in gb.assignments:
            maxima[a.name] = float(a.max_score or 0)
        for student in gb.students:
            scores = {}
            for name in names:
                try:
                    sub = gb.find_submission(name, student.id)
                except MissingEntry:
                    continue
                scores[name] = max(0.0, float(sub.score or 0) - float(sub.late_submission_penalty or 0))
            rows.append(GradebookRow(student.id, student.first_name or "", student.last_name or "",
                                     student.email or "", student.lms_user_id or "", scores))
    return rows, maxima


def _display_name(row: GradebookRow) -> str:
    if row.first_name and row.last_name:
        return f"{row.last_name}, {row.first_name}"
    return row.last_name or row.first_name or row.id


def export(lms: str, workdir: Path, out: Path, template: Path | None = None) -> list[str]:
    """Write the LMS's gradebook import file; returns the problems (students that could not
    be placed), also printed by the command."""
    from .nbgrader_apps import gradebook_url

    if lms not in LMS_NAMES:
        raise LmsError(f"unknown LMS {lms!r} (one of {', '.join(LMS_NAMES)})")
    workdir = Path(workdir).resolve()
    if not (workdir / "gradebook.db").exists() and gradebook_url(workdir).startswith("sqlite"):
        raise LmsError(f"no gradebook in {workdir} (run `python -m grader autograde --lms {lms} ZIP` first)")
    rows, maxima = gradebook_rows(gradebook_url(workdir))
    graded = [a for a in assignments() if a in maxima]
    extra = read_mapping(workdir).get("students", {})
    problems: list[str] = []
    if template:
        header, body = _read_template(template)
    else:
        header, body = _fresh_template(lms, rows, extra, problems)
    key = "ID" if lms == "canvas" else None
    if lms == "moodle":
        key = next((k for k in ("Email address", "ID number", "Username") if k in header), None)
        if key is None:
            raise LmsError("the Moodle template has no Email address, ID number or Username column to match on")
    elif "ID" not in header:
        raise LmsError("the Canvas template has no ID column (export the gradebook from Canvas again)")
    columns = {}
    for assignment in graded:
        col = matching_column(header[5:] if lms == "canvas" else header, assignment)
        if col is None:
            col = assignment
            header.append(col)
            for record in body:
                record[col] = (_pts(maxima[assignment]) if record.get("Student", "").strip() == POINTS_POSSIBLE
                               else "")
        columns[assignment] = col
    index: dict[str, dict] = {}
    for record in body:
        value = record.get(key, "").strip()
        if value:
            index[value.casefold() if key == "Email address" else value] = record
    for row in rows:
        if not row.scores:
            continue
        if lms == "canvas":
            ident = row.lms_user_id
        elif key == "Email address":
            ident = row.email.casefold()
        elif key == "ID number":
            ident = extra.get(row.id, {}).get("id_number", "")
        else:
            ident = ""
        record = index.get(ident) if ident else None
        if record is None:
            if not ident:
                what = "Canvas user id" if lms == "canvas" else key
                problems.append(f"{row.id}: no {what} known (not from an LMS download, or graded without "
                                "a --roster), not exported")
                continue
            record = _new_record(lms, row, extra.get(row.id, {}), header)
            body.append(record)
            index[ident] = record
            if template:
                problems.append(f"{row.id}: not in the template, added as a new row")
        for assignment, col in columns.items():
            if assignment in row.scores:
                record[col] = _pts(row.scores[assignment])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header, quoting=csv.QUOTE_MINIMAL, extrasaction="ignore")
        writer.writeheader()
        for record in body:
            writer.writerow({h: record.get(h, "") for h in header})
    return problems


CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_COLUMNS = ["First name", "Last name", "ID number", "Email address"]


def _new_record(lms: str, row: GradebookRow, extra: dict, header: list[str]) -> dict:
    if lms == "canvas":
        return {"Student": _display_name(row), "ID": row.lms_user_id,
                "SIS User ID": extra.get("sis_user_id", ""), "SIS Login ID": extra.get("sis_login_id", ""),
                "Section": extra.get("section", "")}
    return {"First name": row.first_name, "Last name": row.last_name,
            "ID number": extra.get("id_number", ""), "Email address": row.email}


def _fresh_template(lms: str, rows, extra, problems) -> tuple[list[str], list[dict]]:
    if lms == "canvas":
        # Canvas's own export has a "Points Possible" row under the header; its import reads it
        return list(CANVAS_COLUMNS), [{"Student": "    " + POINTS_POSSIBLE}]
    return list(MOODLE_COLUMNS), []


def _read_template(path: Path) -> tuple[list[str], list[dict]]:
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LmsError(f"{path}: not UTF-8 text (export the gradebook from the LMS as UTF-8 CSV)")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise LmsError(f"{path}: empty template")
    if len(set(header)) != len(header):
        raise LmsError(f"{path}: two columns of the same name in the header")
    body = []
    for cells in reader:
        cells = cells + [""] * (len(header) - len(cells))
        body.append(dict(zip(header, cells)))
    return list(header), body
