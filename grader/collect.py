"""Collect ``SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb`` for nbgrader, in a way
no submission can steer.

* Only regular files and folders are taken: a symbolic link (to ``solutions/``, to a
  classmate, dangling) is reported and never followed, checked on the entry itself and
  after resolving it inside the submissions folder.
* Student, assignment and notebook names are checked and reported, never used as glob
  patterns: a student folder named ``[m11]`` or ``*`` is refused, not expanded.
* One bad entry never aborts the run: it is reported and the rest is collected.
* ``submitted/`` is made anew for every run, so nothing an earlier run left is graded again
  (built beside it and swapped in at the end, so the folder nbgrader's own ``collect``
  fills, ``classroom/submitted``, can itself be what is graded).
* What nbgrader's exchange wrote beside a submission is kept when it is well formed: its
  ``timestamp.txt`` (late penalties) and ``submission_secret.txt`` (where the student's
  feedback is released); anything else in the folder is ignored.
* Each notebook is read as data and written back normalised: nbgrader metadata restored
  from the release (a cell cannot claim to be a test or a solution it is not), duplicated
  grade_ids repaired (the first kept, the rest reported), deleted exercise and test cells
  put back (``grader/repair.py``).
"""
from __future__ import annotations

import copy
import datetime as _dt
import os
import re
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import notebooks
from .paths import COURSE, SOLUTIONS, assignments
from .repair import restore_missing_cells

STUDENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")
MAX_NOTEBOOK_BYTES = 20 * 2**20


@dataclass
class Collection:
    found: dict[str, list[str]] = field(default_factory=dict)  # assignment -> students
    problems: list[str] = field(default_factory=list)  # one line per refused entry
    # (student, assignment, notebook, why): a valid student's notebook that scores 0 unread
    refused: list[tuple[str, str, str, str]] = field(default_factory=list)

    def report(self, text: str) -> None:
        self.problems.append(text)


def _show(name: str) -> str:
    """A name as it can be printed safely."""
    return repr("".join(ch if ch.isprintable() else "?" for ch in name)[:80])


def _entries(folder: Path, what: str, collection: Collection) -> list[os.DirEntry]:
    try:
        return sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        collection.report(f"{what}: cannot be read ({exc.strerror})")
        return []


def _is_plain_dir(entry: os.DirEntry, root: Path) -> bool:
    if entry.is_symlink() or not entry.is_dir(follow_symlinks=False):
        return False
    return Path(os.path.realpath(entry.path)).is_relative_to(root)


def course_notebooks(assignment: str) -> list[str]:
    return sorted(p.name for p in (SOLUTIONS / assignment).glob("*.ipynb"))


def collect(submissions: Path, workdir: Path, log=print,
            timestamps: dict[tuple[str, str], str] | None = None) -> Collection:
    """Copy the submissions into ``workdir/submitted`` (made anew), normalised. Each
    submission's ``timestamp.txt`` (nbgrader's submission time, which decides lateness) is
    ``timestamps[(student, assignment)]`` when given (an LMS's submission time), else the one
    nbgrader's exchange wrote in the folder (``nbgrader collect``), else now."""
    root = Path(os.path.realpath(submissions))
    out = Collection()
    if not root.is_dir():
        out.report(f"{submissions}: not a folder")
        return out
    final = workdir / "submitted"
    submitted = workdir / "submitted.new"
    shutil.rmtree(submitted, ignore_errors=True)
    submitted.mkdir(parents=True)
    known = set(assignments())
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f %Z")
    for student in _entries(root, str(submissions), out):
        if not STUDENT_NAME.match(student.name):
            out.report(f"student folder {_show(student.name)}: refused (names may use letters, digits "
                       "and . _ - @ +, starting with a letter or digit)")
            continue
        if not _is_plain_dir(student, root):
            out.report(f"{student.name}: not a folder (a link or a file), not followed")
            continue
        for folder in _entries(Path(student.path), student.name, out):
            where = f"{student.name}/{_show(folder.name)[1:-1]}"
            if folder.name not in known:
                out.report(f"{where}: not an assignment of this course ({', '.join(sorted(known))})")
                continue
            if not _is_plain_dir(folder, root):
                out.report(f"{where}: not a folder (a link or a file), not followed")
                for name in course_notebooks(folder.name):
                    out.refused.append((student.name, folder.name, name[:-6], "a link, not followed"))
                continue
            dest = submitted / student.name / folder.name
            taken = _collect_assignment(Path(folder.path), folder.name, dest, where, out, log)
            if taken:
                kept = _exchange_files(Path(folder.path))
                given = (timestamps or {}).get((student.name, folder.name))
                (dest / "timestamp.txt").write_text(given or kept.pop("timestamp.txt", stamp))
                kept.pop("timestamp.txt", None)
                for name, text in kept.items():
                    (dest / name).write_text(text)
                out.found.setdefault(folder.name, []).append(student.name)
    shutil.rmtree(final, ignore_errors=True)
    submitted.rename(final)
    return out


_SECRET = re.compile(r"^[0-9a-f]{16,256}$")


def _exchange_files(folder: Path) -> dict[str, str]:
    """nbgrader's ``timestamp.txt`` and ``submission_secret.txt`` in a collected folder,
    when they are small regular files of the expected form (never followed through a link)."""
    from nbgrader.utils import parse_utc

    kept = {}
    for name in ("timestamp.txt", "submission_secret.txt"):
        try:
            fd = os.open(folder / name, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                continue
            raw = f.read(300)
        try:
            text = raw.decode("ascii").strip()
            if name == "timestamp.txt":
                parse_utc(text)
            elif not _SECRET.match(text):
                continue
        except Exception:
            continue
        kept[name] = text
    return kept


def _collect_assignment(folder: Path, assignment: str, dest: Path, where: str,
                        out: Collection, log) -> int:
    expected = course_notebooks(assignment)
    taken = 0
    for entry in _entries(folder, where, out):
        if not entry.name.endswith(".ipynb"):
            continue
        label = f"{where}/{_show(entry.name)[1:-1]}"
        if entry.name not in expected:
            out.report(f"{label}: not a notebook of {assignment} (expected {', '.join(expected)})")
            continue
        nb = _read_notebook(entry, label, out)
        if nb is None:
            out.refused.append((where.split("/")[0], assignment, entry.name[:-6], out.problems[-1].split(": ", 1)[-1]))
            continue
        try:
            notes = normalise(nb, assignment, entry.name)
            dest.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, str(dest / entry.name))
        except Exception as exc:
            out.report(f"{label}: not a valid notebook ({type(exc).__name__}), scored 0")
            out.refused.append((where.split("/")[0], assignment, entry.name[:-6], "not a valid notebook"))
            continue
        for note in notes:
            log(f"{label}: {note}")
        taken += 1
    return taken


def _read_notebook(entry: os.DirEntry, label: str, out: Collection):
    try:
        info = entry.stat(follow_symlinks=False)
    except OSError as exc:
        out.report(f"{label}: cannot be read ({exc.strerror})")
        return None
    if not stat.S_ISREG(info.st_mode):
        out.report(f"{label}: not a regular file (a link, a folder or a device), not graded")
        return None
    if info.st_size > MAX_NOTEBOOK_BYTES:
        out.report(f"{label}: {info.st_size} bytes, over the {MAX_NOTEBOOK_BYTES} byte limit, not graded")
        return None
    try:
        fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            raw = f.read(MAX_NOTEBOOK_BYTES + 1)
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
        if not isinstance(nb.get("cells"), list):
            raise ValueError("no cells")
        return nb
    except Exception as exc:
        out.report(f"{label}: not a readable notebook ({type(exc).__name__}), scored 0")
        return None


def normalise(nb, assignment: str, filename: str) -> list[str]:
    """nbgrader metadata from the release, grade_ids made unique, deleted cells put back.
    Returns what was changed, one line each."""
    release_path = COURSE / assignment / filename
    if not release_path.exists():
        return []
    release = notebooks.load(release_path)
    meta = {notebooks.grade_id(c): (c.cell_type, c.metadata["nbgrader"]) for c in release.cells
            if notebooks.grade_id(c)}
    notes, seen = [], set()
    for cell in nb.cells:
        claimed = cell.get("metadata", {}).get("nbgrader")
        if claimed is None:
            continue
        gid = claimed.get("grade_id") if isinstance(claimed, dict) else None
        if gid in seen:
            notes.append(f"a second cell with grade_id {_show(str(gid))}: kept the first, graded the other as plain code")
        elif gid not in meta or cell.get("cell_type") != meta[gid][0]:
            notes.append(f"nbgrader metadata of a cell ({_show(str(gid))}) is not the release's: removed")
        else:
            seen.add(gid)
            cell.metadata["nbgrader"] = copy.deepcopy(meta[gid][1])
            continue
        del cell.metadata["nbgrader"]
    restored = restore_missing_cells(nb, release)
    if restored:
        notes.append("put back deleted cells " + ", ".join(restored))
    return notes
