"""What makes the coordinator's nbgrader passes faster changes nothing they write:
SaveAutoGrades in one transaction per notebook writes the gradebook rows nbgrader's own
writes, a kept engine serves every Gradebook of a pass, the deferred import of jsonschema's
IRI grammar still checks IRIs, the passes start without torch, and a pass given to a
process started ahead runs with its own arguments and environment."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader.nbgrader_apps import WAIT_FOR_ARGUMENTS
from grader.paths import COURSE, ROOT, subprocess_env

# Fills a gradebook as SaveAutoGrades does for three students whose test cells fail in
# different places; prints the rows it wrote and how many transactions it took.
SAVE = r"""
import json, sys
mode, url, release = sys.argv[1:4]
if mode == "batch":
    from grader import speedups
    speedups.install_batch()
import nbformat
from nbgrader.api import Gradebook
from nbgrader.preprocessors import SaveAutoGrades
from sqlalchemy import event
from sqlalchemy.engine import Engine

commits = []
event.listen(Engine, "commit", lambda conn: commits.append(1))
rows, engines = {}, set()
for i, student in enumerate(["ann", "ben", "cy"]):
    with Gradebook(url) as gb:
        gb.update_or_create_student(student)
        gb.add_submission("03-dropout", student)
        engines.add(id(gb.engine))
    nb = nbformat.read(release, as_version=4)
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    for j, cell in enumerate(graded):
        if cell.cell_type == "code" and (i + j) % 3 == 0:
            cell.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="no", traceback=[])]
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution") and i == 1:
            cell.source += "\n# edited"
    before = len(commits)
    resources = {"nbgrader": {"notebook": "dropout", "assignment": "03-dropout", "student": student,
                              "db_url": url}}
    SaveAutoGrades().preprocess(nb, resources)
    rows[student] = {"commits": len(commits) - before}
    with Gradebook(url) as gb:
        sub = gb.find_submission_notebook("dropout", "03-dropout", student)
        rows[student]["grades"] = sorted((g.name, g.auto_score, g.needs_manual_grade) for g in sub.grades)
        rows[student]["comments"] = sorted((c.name, c.auto_comment) for c in sub.comments)
        engines.add(id(gb.engine))
print(json.dumps({"rows": rows, "engines": len(engines)}))
"""


def _generate(tmp_path) -> str:
    db = tmp_path / "gradebook.db"
    subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "03-dropout", "--force",
                    f"--CourseDirectory.release_directory={tmp_path / 'release'}",
                    f"--CourseDirectory.db_url=sqlite:///{db}", "--log-level=ERROR"],
                   cwd=ROOT, env=subprocess_env(), check=True, capture_output=True)
    return str(db)


@pytest.mark.slow
def test_one_transaction_per_notebook_writes_nbgraders_rows(tmp_path):
    db = _generate(tmp_path)
    out = {}
    for mode in ("nbgrader", "batch"):
        copy = tmp_path / f"{mode}.db"
        shutil.copy(db, copy)
        run = subprocess.run([sys.executable, "-c", SAVE, mode, f"sqlite:///{copy}",
                              str(COURSE / "03-dropout" / "dropout.ipynb")],
                             cwd=ROOT, env=subprocess_env(), capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        out[mode] = json.loads(run.stdout.strip().splitlines()[-1])
    ours, theirs = out["batch"]["rows"], out["nbgrader"]["rows"]
    for student in ("ann", "ben", "cy"):
        assert ours[student]["grades"] == theirs[student]["grades"]
        assert ours[student]["comments"] == theirs[student]["comments"]
        assert ours[student]["commits"] == 1 and theirs[student]["commits"] > 10
    scores = {s: sum(g[1] for g in r["grades"]) for s, r in ours.items()}
    assert len(set(scores.values())) == 3  # the three students differ: the rows were read, not assumed
    assert any(c[1] is None for c in ours["ben"]["comments"]) and all(
        c[1] == "No response." for c in ours["ann"]["comments"])
    assert out["batch"]["engines"] == 1 and out["nbgrader"]["engines"] > 1


def test_the_iri_grammar_is_imported_when_an_iri_is_checked():
    code = ("import sys, grader, jsonschema\n"
            "loaded = 'rfc3987_syntax.syntax_helpers' in sys.modules\n"
            "fc = jsonschema.FormatChecker()\n"
            "print(loaded, fc.conforms('http://example.org/\\u00e4', 'iri'), fc.conforms('a b::', 'iri'),"
            " 'rfc3987_syntax.syntax_helpers' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=subprocess_env(), capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "True", "False", "True"]


def test_preparing_and_recording_do_not_import_torch():
    code = ("import sys, grader.nbgrader_main, grader.parallel, grader.autograde\n"
            "print('torch' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=subprocess_env(), capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False"]


def _waiting_children() -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
            parent = int((cmdline.parent / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == os.getpid() and WAIT_FOR_ARGUMENTS.encode() in args:
            found.append(int(cmdline.parent.name))
    return found


def test_a_pass_runs_in_a_process_started_ahead_with_its_arguments_and_environment(tmp_path):
    from grader import nbgrader_apps

    with nbgrader_apps.warm_passes(2):
        pool = nbgrader_apps._pool
        pool.lock.acquire()
        pool.lock.wait_for(lambda: len(pool.ready) == 2, timeout=60)
        pool.lock.release()
        assert len(_waiting_children()) == 2
        db = tmp_path / "from-the-environment.db"
        run = nbgrader_apps.nbgrader("generate_assignment", "03-dropout", "--force",
                                     f"--CourseDirectory.release_directory={tmp_path / 'release'}",
                                     env={"GRADER_DB_URL": f"sqlite:///{db}"})
        assert WAIT_FOR_ARGUMENTS in run.args  # a process started ahead ran it
        assert (tmp_path / "release" / "03-dropout" / "dropout.ipynb").exists()
        assert db.exists()  # the environment reached nbgrader_config.py
        bad = nbgrader_apps.nbgrader("generate_assignment", "no-such-assignment", check=False)
        assert bad.returncode != 0 and "no-such-assignment" in bad.stdout  # its failure is told
    assert _waiting_children() == []  # the ones left were told to stop, and did
