"""Grading a class in parallel: local workers and a real Dask cluster give the scores and
messages of one worker; --resume re-grades only what changed; a PostgreSQL gradebook works.

A mixed class of 03-dropout (complete, partial, untouched, typical mistakes, a syntax
error, a kernel that exits), lean notebooks so that each run takes seconds per notebook."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from grader import notebooks
from grader.autograde import autograde
from grader.paths import ROOT, source_notebooks, subprocess_env
from parallel_class import mixed_class, table

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _short_cells(monkeypatch):
    monkeypatch.setenv("GRADER_CELL_TIMEOUT", "30")


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    return mixed_class(tmp_path_factory.mktemp("class") / "subs")


@pytest.fixture(scope="module")
def one_worker(klass, tmp_path_factory):
    os.environ["GRADER_CELL_TIMEOUT"] = "30"
    return table(autograde(klass, tmp_path_factory.mktemp("w1"), feedback=False, workers=1))


def test_one_worker_grades_the_mixed_class(one_worker):
    scores = {s: v[0] for (s, _), v in one_worker.items()}
    points = notebooks.points(notebooks.load(source_notebooks("03-dropout")[0]))
    full = sum(points.values())
    assert scores["alice"] == full and scores["carol"] == 0
    assert 0 < scores["bob"] < full and 0 < scores["dave"] < full
    assert scores["erin"] <= full - points["Dropout"]  # a syntax error in Dropout
    assert scores["frank"] == full - points["expected_without_rescale"]  # os._exit in that answer
    assert all(not v[1] for v in one_worker.values())
    frank = {c[0]: c[3] for c in one_worker[("frank", "dropout")][2]}
    assert frank["test_expected_without_rescale"]  # a message, not a silent zero


def test_two_workers_give_the_same_scores_and_messages(klass, one_worker, tmp_path, monkeypatch):
    from grader.autograde import default_workers

    monkeypatch.setattr("grader.autograde.FEEDBACK_GROUP", 2)  # the passes split over the cores: 3 + 3
    lines = []
    got = table(autograde(klass, tmp_path / "w2", feedback=False, workers=2, log=lines.append))
    assert got == one_worker
    assert len(list((tmp_path / "w2" / "executed").glob("*.ipynb"))) == 6
    log = (tmp_path / "w2" / "nbgrader.log").read_text()
    assert "does not match" not in log
    if default_workers() >= 2:  # two processes wrote the SQLite gradebook at once, without error
        assert "autograde (harvest) 03-dropout (exit 0, 0)" in log
        assert "autograde (record) 03-dropout (exit 0, 0)" in log
    # The working folder is private to the instructor: 0700, and in it 0700 / 0600.
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(tmp_path / "w2") == 0o700
    for sub in ("tasks", "executed", "submitted", "autograded"):
        assert mode(tmp_path / "w2" / sub) == 0o700, sub
    for name in ("gradebook.db", "nbgrader.log", "cells.csv", "failures.txt"):
        assert mode(tmp_path / "w2" / name) == 0o600, name
    # --resume: nothing changed, nothing runs again; one changed notebook runs again.
    lines.clear()
    again = table(autograde(klass, tmp_path / "w2", feedback=False, workers=2, resume=True,
                            log=lines.append))
    assert again == one_worker
    assert any("(6 kept from an earlier run)" in line for line in lines), lines
    changed = tmp_path / "changed"
    shutil.copytree(klass, changed)
    shutil.copy(klass / "alice" / "03-dropout" / "dropout.ipynb", changed / "carol" / "03-dropout" / "dropout.ipynb")
    lines.clear()
    third = table(autograde(changed, tmp_path / "w2", feedback=False, workers=2, resume=True,
                            log=lines.append))
    assert any("(5 kept from an earlier run)" in line for line in lines), lines
    assert third[("carol", "dropout")][0] == one_worker[("alice", "dropout")][0]  # alice's copy
    assert {k: v for k, v in third.items() if k[0] != "carol"} == \
        {k: v for k, v in one_worker.items() if k[0] != "carol"}


def test_an_assignment_is_recorded_while_another_executes(klass, one_worker, tmp_path):
    """Two assignments, one worker: 01's record pass and feedback run while 03's notebooks
    execute (grader.pipeline); the grades and pages are those of the usual order."""
    from grader import submissions
    from hostile import lean

    subs = tmp_path / "subs"
    for student in ("alice", "carol"):
        shutil.copytree(klass / student, subs / student)
        for source in source_notebooks("01-bias-variance"):
            nb = lean(submissions.untouched("01-bias-variance", source.stem))
            submissions.write(nb, subs / student / "01-bias-variance" / source.name)
    lines = []
    got = autograde(subs, tmp_path / "work", workers=1, log=lines.append)
    assert any(line.startswith("recorded while the workers executed: 01-bias-variance") for line in lines), lines
    assert not any("01-bias-variance: recording" in line for line in lines), lines
    log = (tmp_path / "work" / "nbgrader.log").read_text()
    assert "autograde (record, while executing) 01-bias-variance (exit 0)" in log
    assert "generate_feedback 01-bias-variance (exit 0)" in log  # then, or after the execution
    mine = table(r for r in got if r.assignment == "03-dropout")
    assert mine == {k: v for k, v in one_worker.items() if k[0] in ("alice", "carol")}
    early = [r for r in got if r.assignment == "01-bias-variance"]
    assert len(early) == 2 * len(source_notebooks("01-bias-variance"))
    assert all(not r.error and r.cells and r.score < r.max_score for r in early), early
    for student in ("alice", "carol"):
        for assignment in ("01-bias-variance", "03-dropout"):
            pages = list((tmp_path / "work" / "feedback" / student / assignment).glob("*.html"))
            assert pages, (student, assignment)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_real_dask_cluster_gives_the_same_grades(klass, one_worker, tmp_path):
    from distributed import Client

    bin_dir = Path(sys.executable).parent
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = subprocess_env()
    logs = open(tmp_path / "dask.log", "w")
    procs = [subprocess.Popen([str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port",
                               str(port), "--no-dashboard"], cwd=tmp_path, env=env, stdout=logs, stderr=logs)]
    try:
        for i in range(2):
            # One thread per worker process: the judge of a notebook owns its process.
            procs.append(subprocess.Popen(
                [str(bin_dir / "dask"), "worker", address, "--nthreads", "1", "--no-dashboard",
                 "--local-directory", str(tmp_path / f"worker{i}"), "--name", f"w{i}"],
                cwd=tmp_path, env=env, stdout=logs, stderr=logs))
        deadline = time.time() + 90
        while True:
            try:
                with Client(address, timeout="5s") as client:
                    client.wait_for_workers(2, timeout=60)
                break
            except (OSError, TimeoutError):
                if time.time() > deadline:
                    raise
                time.sleep(1)
        subset = tmp_path / "subset"
        for student in ("alice", "dave", "frank"):
            shutil.copytree(klass / student, subset / student)
        got = table(autograde(subset, tmp_path / "work", feedback=False, scheduler=address))
        assert got == {k: v for k, v in one_worker.items() if k[0] in ("alice", "dave", "frank")}
        with Client(address, timeout="10s") as client:  # both workers took part
            assert len(client.scheduler_info()["workers"]) == 2
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        logs.close()


def _postgres_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture
def postgres(tmp_path):
    """A throw-away PostgreSQL server on loopback (Debian's `postgresql` package)."""
    pg = _postgres_bin()
    if pg is None and os.environ.get("GRADER_REQUIRE_POSTGRES"):
        pytest.fail("GRADER_REQUIRE_POSTGRES is set (CI) but PostgreSQL is not installed")
    if pg is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql); "
                    ".ci/run installs it so CI runs this test")
    pytest.importorskip("psycopg2", reason="pip install psycopg2-binary")
    as_user = []
    data = Path(tempfile.mkdtemp(prefix="grader-pg-"))
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(data, "postgres", "postgres")
    port = _free_port()
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, text=True)  # noqa: E731
    run(str(pg / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U", "grader", "--no-sync")
    run(str(pg / "pg_ctl"), "-D", str(data / "db"), "-l", str(data / "log"), "-w", "-t", "60", "-o",
        f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    try:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=port, user="grader", dbname="postgres")
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE regnorm")
        conn.close()
        yield f"postgresql://grader@127.0.0.1:{port}/regnorm"
    finally:
        subprocess.run([*as_user, str(pg / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def test_a_postgresql_gradebook_from_nbgrader_config(klass, one_worker, tmp_path, postgres, monkeypatch):
    from nbgrader.api import Gradebook

    from grader.nbgrader_apps import configured_db_url, gradebook_url

    monkeypatch.setenv("GRADER_DB_URL", postgres)  # read by nbgrader_config.py
    url = gradebook_url(tmp_path)  # postgresql+psycopg2://... (SQLAlchemy 2.1 defaults to psycopg 3)
    assert configured_db_url() == url and url.startswith("postgresql") and url.endswith(postgres.split("@")[1])
    subset = tmp_path / "subset"
    for student in ("alice", "erin"):
        shutil.copytree(klass / student, subset / student)
    monkeypatch.setattr("grader.autograde.FEEDBACK_GROUP", 1)  # a process per student in each pass
    got = table(autograde(subset, tmp_path / "work", feedback=False, workers=2))
    assert got == {k: v for k, v in one_worker.items() if k[0] in ("alice", "erin")}
    assert not (tmp_path / "work" / "gradebook.db").exists()
    with Gradebook(url) as gb:
        assert gb.find_submission("03-dropout", "alice").score == one_worker[("alice", "dropout")][0]
        assert gb.find_submission("03-dropout", "erin").score == one_worker[("erin", "dropout")][0]
    assert "alice" in (tmp_path / "work" / "grades.csv").read_text()


def test_ctrl_c_keeps_what_was_graded_and_resume_finishes(klass, one_worker, tmp_path):
    import signal

    subset = tmp_path / "subset"
    for student in ("alice", "bob", "carol", "dave"):
        shutil.copytree(klass / student, subset / student)
    work = tmp_path / "work"
    command = [sys.executable, "-m", "grader", "autograde", str(subset), "--workdir", str(work),
               "--workers", "1", "--no-feedback"]
    env = {**subprocess_env(), "GRADER_CELL_TIMEOUT": "30"}
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    deadline = time.time() + 300
    while not list((work / "executed").glob("*.ipynb")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole group
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, out + err
    assert "Interrupted" in out and "--resume" in out
    kept = len(list((work / "executed").glob("*.ipynb")))
    assert 1 <= kept < 4
    rows = [line.split() for line in out.splitlines()]
    graded = [r for r in rows if r[:1] and r[0] in ("alice", "bob", "carol", "dave") and r[1] != "-"]
    assert 1 <= len(graded) <= kept, out  # the finished ones are in the table (and the gradebook)
    again = subprocess.run(command + ["--resume"], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"({kept} kept from an earlier run)" in again.stdout
    full = one_worker[("alice", "dropout")][0]
    for student in ("alice", "bob", "carol", "dave"):
        score = one_worker[(student, "dropout")][0]
        row = next(line.split() for line in again.stdout.splitlines() if line.startswith(student + " "))
        assert row[1:4] == [f"{score:g}", "/", f"{full:g}"], row
