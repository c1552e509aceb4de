"""The real thing: nbgrader autogrades whole notebooks in a Jupyter kernel.

One demo class (complete, half done, untouched, typical mistakes) is graded for every
assignment; its scores must equal the in-process scorer's, which the mistake tests use.
Then broken submissions, `python -m grader check`, and JupyterLab serving the course."""
from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from grader import notebooks, submissions
from grader.mistakes import demo_mistakes
from grader.paths import COURSE, ROOT, assignments, source_notebooks, subprocess_env
from grader.score import score_in_process

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_class(tmp_path_factory):
    from grader.demo import demo

    workdir = tmp_path_factory.mktemp("demo")
    results = demo(workdir=workdir)
    return workdir, {(r.student, r.assignment, r.notebook): r for r in results}


def _stub_sources(assignment, name):
    released = notebooks.load(COURSE / assignment / f"{name}.ipynb")
    return {notebooks.grade_id(c): c.source for c in released.cells if notebooks.is_solution(c)}


def _in_process_total(assignment, name, answers, skip=()):
    return sum(r.score for gid, r in score_in_process(assignment, name, answers).items()
               if r.exercise not in skip)


def _questions_on_runs(assignment):
    from helpers import question_runs

    return set(question_runs(assignment))


CASES = [(a, nb.stem) for a in assignments() for nb in source_notebooks(a)]


@pytest.mark.parametrize("assignment,name", CASES)
def test_demo_scores_match_the_in_process_scorer(demo_class, assignment, name):
    _, results = demo_class
    full = sum(notebooks.points(notebooks.load(source_notebooks(assignment)[0])).values())
    got = {s: results[(s, assignment, name)] for s in ("alice", "bob", "carol", "dave")}
    for r in got.values():
        assert r.max_score == full and not r.error

    assert got["alice"].score == full, got["alice"].exercises()
    assert got["carol"].score == 0, got["carol"].exercises()

    solutions = submissions.solution_sources(assignment, name)
    stubs = _stub_sources(assignment, name)
    half = list(solutions)[: math.ceil(len(solutions) / 2)]
    bob = {k: (solutions[k] if k in half else stubs[k]) for k in solutions}
    assert got["bob"].score == _in_process_total(assignment, name, bob)
    assert 0 < got["bob"].score < full

    dave = dict(solutions)
    for mistake in demo_mistakes(assignment).values():
        dave[mistake.exercise] = mistake.source
    # Questions read the notebook's own run, which in-process replays only in part: with a
    # mistaken function upstream (dave) the run can differ, so they are compared apart (the
    # judge-equivalence test compares them on the solution's run).
    questions = _questions_on_runs(assignment)
    real = sum(c.score for c in got["dave"].cells if c.exercise not in questions)
    assert real == _in_process_total(assignment, name, dave, skip=questions)
    assert all(c.score <= c.max_score for c in got["dave"].cells)
    assert 0 < got["dave"].score < full
    failing = "\n".join(m for _, _, _, ms in got["dave"].exercises() for m in ms)
    assert "How to fix" in failing  # feedback names the mistake, not a traceback


def test_demo_dropout_table(demo_class):
    _, results = demo_class
    scores = {s: results[(s, "03-dropout", "dropout")].score for s in ("alice", "bob", "carol", "dave")}
    assert scores == {"alice": 17, "bob": 11, "carol": 0, "dave": 11}
    dave = dict((e, (got, avail)) for e, got, avail, _ in results[("dave", "03-dropout", "dropout")].exercises())
    assert dave == {"dropout": (4, 6), "Dropout": (0, 2), "DropoutMLP": (2, 3), "expected_without_rescale": (1, 2),
                    "best_p": (2, 2), "variance_ratio": (2, 2)}


def test_demo_writes_gradebook_feedback_and_exports(demo_class):
    workdir, results = demo_class
    assert (workdir / "gradebook.db").exists()
    grades = (workdir / "grades.csv").read_text().splitlines()
    assert len(grades) == 1 + 4 * len(assignments())
    for student, assignment, name in results:
        html = workdir / "feedback" / student / assignment / f"{name}.html"
        assert html.exists(), html
    dave_html = (workdir / "feedback" / "dave" / "03-dropout" / "dropout.html").read_text()
    assert "not rescaled" in dave_html
    cells = (workdir / "cells.csv").read_text()
    assert "test_dropout" in cells and "not rescaled" in cells


def _broken(tmp_path):
    """Submissions that must not stop the grader: deleted test cells, a deleted exercise
    with its tests, an endless loop, a syntax error, and a file that is not a notebook."""
    folder = tmp_path / "subs"
    nb = submissions.complete("03-dropout", "dropout")
    nb.cells = [c for c in nb.cells if notebooks.grade_id(c) not in ("test_dropout_eval", "test_Dropout_mode")]
    submissions.write(nb, folder / "deleter" / "03-dropout" / "dropout.ipynb")

    nb = submissions.complete("03-dropout", "dropout")
    nb.cells = [c for c in nb.cells if notebooks.grade_id(c) not in ("Dropout", "test_Dropout", "test_Dropout_mode")]
    submissions.write(nb, folder / "eraser" / "03-dropout" / "dropout.ipynb")

    nb = submissions.fill("03-dropout", "dropout", {
        **submissions.solution_sources("03-dropout", "dropout"),
        "expected_without_rescale": "while True:\n    pass",
    })
    submissions.write(nb, folder / "looper" / "03-dropout" / "dropout.ipynb")

    nb = submissions.fill("03-dropout", "dropout", {
        **submissions.solution_sources("03-dropout", "dropout"),
        "Dropout": "class Dropout(nn.Module:\n    pass",
    })
    submissions.write(nb, folder / "crasher" / "03-dropout" / "dropout.ipynb")

    (folder / "garbage" / "03-dropout").mkdir(parents=True)
    (folder / "garbage" / "03-dropout" / "dropout.ipynb").write_text("{ this is not json")
    return folder


def test_broken_submissions_are_graded_not_fatal(tmp_path, monkeypatch):
    from grader.autograde import autograde

    monkeypatch.setenv("GRADER_CELL_TIMEOUT", "30")
    results = {r.student: r for r in autograde(_broken(tmp_path), tmp_path / "work", feedback=False)}
    points = notebooks.points(notebooks.load(source_notebooks("03-dropout")[0]))
    full = sum(points.values())
    assert results["deleter"].score == full, results["deleter"].exercises()  # deleted tests put back
    assert {c.grade_id for c in results["deleter"].cells} >= {"test_dropout_eval", "test_Dropout_mode"}
    # nbgrader 0.9.6 alone fails the whole notebook when an exercise and its tests are
    # deleted together; grader/repair.py puts them back, so only that exercise is lost.
    eraser = {e: (got, msgs) for e, got, _, msgs in results["eraser"].exercises()}
    assert eraser["dropout"][0] == 6 and eraser["Dropout"][0] == 0
    assert eraser["expected_without_rescale"][0] == points["expected_without_rescale"]
    assert "not implemented yet" in "\n".join(eraser["Dropout"][1])
    looper = {e: (got, msgs) for e, got, _, msgs in results["looper"].exercises()}
    assert looper["expected_without_rescale"][0] == 0
    assert results["looper"].score == full - points["expected_without_rescale"]
    crasher = {e: got for e, got, _, _ in results["crasher"].exercises()}
    assert crasher["dropout"] == 6 and crasher["Dropout"] == 0
    assert results["garbage"].error and results["garbage"].score == 0


def _grader(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "grader", *args], cwd=ROOT, env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)


def test_check_prints_zero_for_the_stub_and_full_for_a_completed_copy(tmp_path):
    stub = _grader("check", str(COURSE / "03-dropout" / "dropout.ipynb"))
    assert stub.returncode == 0, stub.stdout + stub.stderr
    rows = [line for line in stub.stdout.splitlines() if line.strip().startswith(("ok", "FAIL"))]
    source = notebooks.load(source_notebooks("03-dropout")[0])
    full = f"{sum(notebooks.points(source).values()):g}"
    assert [r.split()[1] for r in rows] == notebooks.exercises(source)
    assert stub.stdout.rstrip().splitlines()[-1].split()[-3:] == ["0", "/", full]
    assert "not implemented yet" in stub.stdout

    done = tmp_path / "dropout.ipynb"
    submissions.write(submissions.complete("03-dropout", "dropout"), done)
    done_run = _grader("check", str(done))
    assert done_run.returncode == 0, done_run.stdout + done_run.stderr
    assert done_run.stdout.rstrip().splitlines()[-1].split()[-3:] == [full, "/", full]


def test_check_refuses_what_it_cannot_run(tmp_path):
    bad = tmp_path / "dropout.ipynb"
    bad.write_text("not a notebook")
    result = _grader("check", str(bad))
    assert result.returncode != 0 and "cannot be read as a notebook" in result.stdout
    other = tmp_path / "mystery.ipynb"
    other.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    result = _grader("check", str(other))
    assert result.returncode != 0 and "not a notebook of this course" in result.stdout + result.stderr


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_jupyterlab_serves_the_course_with_widgets():
    port = _free_port()
    lab = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "jupyter"), "lab", "--no-browser", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=", "--ServerApp.password=",
         f"--ServerApp.root_dir={COURSE}", *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=ROOT, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                contents = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/03-dropout", timeout=5))
                break
            except OSError:
                if time.time() > deadline or lab.poll() is not None:
                    raise
                time.sleep(0.5)
        assert "dropout.ipynb" in [c["name"] for c in contents["content"]]
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/lab", timeout=10).read().decode()
        assert "JupyterLab" in page
        extensions = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/lab/api/extensions", timeout=10))
        names = {e["name"] for e in extensions}
        assert {"jupyter-widgets-jupyterlab-manager", "jupyter-nbgrader"} <= names
    finally:
        lab.terminate()
        lab.wait(timeout=20)
