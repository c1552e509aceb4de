"""Submission downloads and gradebook files as Canvas and Moodle write them, built here.

Canvas (Instructure's guides, "How do I download all student submissions for an
assignment?" and "How do I import grades in the Gradebook?"): the zip is flat, one file per
submitted file, named ``<lastfirst>_<userid>_<submissionid>_<original file name>``, with
``LATE`` after the name when the submission was late, and ``-1``, ``-2`` ... added before
the extension when a student uploads a file of a name they uploaded before. The gradebook
export/import CSV starts with the columns ``Student, ID, SIS User ID, SIS Login ID,
Section`` (Student is "Last, First", ID the Canvas user id), one column per assignment
titled ``Assignment Name (assignment id)``, and a ``Points Possible`` row under the header.

Moodle (MoodleDocs, "Assignment settings"/"Using Assignment": *Download all submissions*,
and mod/assign/locallib.php ``download_submissions``): with "download submissions in
folders" (the default since Moodle 3.1) each student's files are in a folder
``<Full Name>_<participant id>_assignsubmission_file_/``, otherwise flat as
``<Full Name>_<participant id>_assignsubmission_file_<file>``; online text is
``..._assignsubmission_onlinetext_/onlinetext.html``. The grading worksheet (*Download
grading worksheet*) has ``Identifier`` ("Participant 123456"), ``Full name``, ``Email
address``, ``Status``, ``Grade``, ``Maximum Grade``, ``Last modified (submission)`` ...
Its grade import (Grades > Import > CSV file, MoodleDocs "Import grades") maps users by
``Email address``, ``ID number``, username or user id, and the course gradebook's export
has ``First name, Last name, ID number, Institution, Department, Email address`` and one
column per grade item ``Assignment: <name> (Real)``.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from pathlib import Path

import nbformat

UNIX = 3


def notebook_bytes(nb) -> bytes:
    return nbformat.writes(nb).encode("utf-8")


def add(zf: zipfile.ZipFile, name: str, data: bytes, when=(2026, 3, 1, 10, 0, 0), mode: int | None = None):
    info = zipfile.ZipInfo(name, date_time=when)
    info.compress_type = zipfile.ZIP_DEFLATED
    if mode is not None:
        info.create_system = UNIX
        info.external_attr = mode << 16
    zf.writestr(info, data)


def canvas_name(lastfirst: str, user_id: int, submission_id: int, filename: str, late: bool = False) -> str:
    return f"{lastfirst}{'_LATE' if late else ''}_{user_id}_{submission_id}_{filename}"


def moodle_name(full_name: str, participant: int, filename: str, folders: bool = True,
                plugin: str = "file") -> str:
    prefix = f"{full_name.replace('_', ' ')}_{participant}_assignsubmission_{plugin}_"
    return f"{prefix}/{filename}" if folders else prefix + filename


def canvas_gradebook(students, assignment_columns: dict[str, str], points: dict[str, str]) -> str:
    """Canvas's gradebook export: ``students`` are (name "Last, First", id, sis user id,
    sis login id, section); ``assignment_columns`` {column title: ''}; ``points`` the
    Points Possible row."""
    out = io.StringIO()
    w = csv.writer(out)
    header = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *assignment_columns,
              "Current Score", "Final Score"]
    w.writerow(header)
    w.writerow(["    Points Possible", "", "", "", "", *[points.get(c, "") for c in assignment_columns],
                "(read only)", "(read only)"])
    for s in students:
        w.writerow([*s, *["" for _ in assignment_columns], "", ""])
    return out.getvalue()


def moodle_worksheet(rows) -> str:
    """Moodle's grading worksheet: rows are (participant id, full name, email, last modified)."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
                "Grade can be changed", "Last modified (submission)", "Last modified (grade)",
                "Feedback comments"])
    for pid, name, email, modified in rows:
        w.writerow([f"Participant {pid}", name, email, "Submitted for grading", "", "100.00", "Yes",
                    modified, "-", ""])
    return out.getvalue()


def moodle_gradebook(rows, items: list[str]) -> str:
    """Moodle's gradebook export (plain text file): rows are (first, last, id number, email)."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["First name", "Last name", "ID number", "Institution", "Department", "Email address",
                *items, "Last downloaded from this course"])
    for first, last, idn, email in rows:
        w.writerow([first, last, idn, "", "", email, *["-" for _ in items], "1772000000"])
    return out.getvalue()


def write_zip(path: Path, entries) -> Path:
    """``entries``: (name, bytes[, date_time[, unix mode]])."""
    with zipfile.ZipFile(path, "w") as zf:
        for entry in entries:
            add(zf, *entry)
    return path


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.timezone.utc)
