"""The grading coordinator's own files and wire: tasks and results are read back as data
(JSON, never pickle), anything planted in the working folder is refused before anything
runs, the working folder is private; nbgrader's passes do less per notebook with the same
results; progress is told phase by phase."""
from __future__ import annotations

import io
import json
import os
import pickle
import stat
import subprocess
import sys

import jsonschema
import nbformat
import pytest

from grader import notebooks, parallel
from grader.paths import COURSE, ROOT, make_private, private_dir, subprocess_env

NOTEBOOK = COURSE / "03-dropout" / "dropout.ipynb"


class _Planted:
    """What a hostile pickle does when it is loaded: here, leave a mark."""

    def __init__(self, mark):
        self.mark = str(mark)

    def __reduce__(self):
        return (open, (self.mark, "w"))


def _task() -> parallel.Task:
    nb = notebooks.load(NOTEBOOK)
    tests = {"test_a": ("assert True", 2.0)}
    files = {"data.bin": b"\x00\x01binary\xff"}
    limits = {"cell_timeout": 30.0, "sandbox": {"enabled": True}}
    key = parallel.task_key(nb, tests, files, limits, None)
    return parallel.Task(key, "alice", "03-dropout", "dropout", nbformat.writes(nb), tests, files, limits)


def _write(folder, task):
    folder.mkdir(exist_ok=True)
    (folder / f"{task.key}.task").write_text(task.to_json())


def test_a_task_goes_to_json_and_back_unchanged(tmp_path):
    task = _task()
    _write(tmp_path / "tasks", task)
    text = (tmp_path / "tasks" / f"{task.key}.task").read_text()
    assert json.loads(text)["files"] == {"data.bin": "AAFiaW5hcnn/"}  # bytes as base64
    (back,) = parallel.load_tasks(tmp_path / "tasks")
    assert back == task


def test_a_planted_pickle_is_refused_and_never_loaded(tmp_path):
    tasks = tmp_path / "tasks"
    _write(tasks, _task())
    mark = tmp_path / "pwned"
    planted = tasks / ("0" * 64 + ".task")
    planted.write_bytes(pickle.dumps(_Planted(mark)))
    with pytest.raises(parallel.TaskRefused) as err:
        parallel.load_tasks(tasks)
    assert str(planted) in str(err.value) and "not JSON" in str(err.value)
    assert "nothing was executed" in str(err.value) and "working folder" in str(err.value)
    assert not mark.exists()


@pytest.mark.parametrize("change", ["key", "tests", "notebook", "extra field", "file name", "stray file",
                                    "link"])
def test_a_task_that_is_not_the_graders_is_refused(tmp_path, change):
    tasks = tmp_path / "tasks"
    task = _task()
    _write(tasks, task)
    path = tasks / f"{task.key}.task"
    data = json.loads(path.read_text())
    if change == "key":
        data["key"] = "f" * 64
    elif change == "tests":  # a test made to pass: the content no longer matches the key
        data["tests"] = {"test_a": ["pass", 2.0]}
    elif change == "notebook":
        data["nb_json"] = "not a notebook"
    elif change == "extra field":
        data["__class__"] = "os.system"
    if change in ("key", "tests", "notebook", "extra field"):
        path.write_text(json.dumps(data))
    elif change == "file name":
        path.rename(tasks / ("e" * 64 + ".task"))
    elif change == "stray file":
        (tasks / "notes.txt").write_text("hello")
    elif change == "link":
        (tasks / ("d" * 64 + ".task")).symlink_to(path)
    with pytest.raises(parallel.TaskRefused, match="nothing was executed"):
        parallel.load_tasks(tasks)


def test_the_local_worker_reads_json_only(tmp_path):
    """The worker protocol: a pickle sent to a worker is an error reply, never loaded."""
    mark = tmp_path / "pwned"
    proc = subprocess.Popen([sys.executable, "-m", "grader.parallel"], cwd=ROOT, env=subprocess_env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        data = pickle.dumps(_Planted(mark))
        proc.stdin.write(len(data).to_bytes(8, "big") + data)
        proc.stdin.flush()
        reply = json.loads(parallel._receive(proc.stdout))
        assert reply["status"] == "error" and "not a task written by this grader" in reply["message"]
        proc.stdin.close()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not mark.exists()
    with pytest.raises(ValueError):  # a reply for another task is not taken
        parallel._reply(json.dumps({"status": "ok", "key": "x", "nb_json": "{}", "seconds": 1}), _task())


def test_the_working_folder_is_private(tmp_path):
    work = tmp_path / "classroom"
    work.mkdir(mode=0o755)
    (work / "submitted").mkdir(mode=0o755)
    (work / "gradebook.db").write_text("")
    os.chmod(work / "gradebook.db", 0o644)
    (tmp_path / "elsewhere").write_text("")
    (work / "link").symlink_to(tmp_path / "elsewhere")
    os.chmod(tmp_path / "elsewhere", 0o644)
    make_private(work)
    mode = lambda p: stat.S_IMODE(os.lstat(p).st_mode)  # noqa: E731
    assert mode(work) == 0o700 and mode(work / "submitted") == 0o700
    assert mode(work / "gradebook.db") == 0o600
    assert mode(tmp_path / "elsewhere") == 0o644  # a link is never followed
    assert mode(private_dir(tmp_path / "new" / "work")) == 0o700


def test_the_cached_metadata_validator_gives_nbgraders_verdicts():
    from nbgrader.nbgraderformat import common
    from nbgrader.nbgraderformat.v3 import MetadataValidatorV3

    from grader.speedups import install

    install()
    assert common.jsonschema.validate is not jsonschema.validate
    validator = MetadataValidatorV3()
    nb = notebooks.load(NOTEBOOK)
    validator.validate_nb(nb)  # the release is valid
    for bad in ({"points": "two"}, {"grade": "yes"}, {"grade_id": 3}):
        meta = {**next(c for c in nb.cells if notebooks.is_test(c)).metadata["nbgrader"], **bad}
        with pytest.raises(jsonschema.ValidationError) as ours:
            common.jsonschema.validate(meta, validator.schema)
        with pytest.raises(jsonschema.ValidationError) as theirs:
            jsonschema.validate(meta, validator.schema)
        assert str(ours.value) == str(theirs.value)


def test_progress_tells_the_phase_its_rate_and_time_left(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(parallel.time, "monotonic", lambda: clock[0])
    out = io.StringIO()
    progress = parallel.Progress(300, out, "recorded", phase="recording")
    clock[0] += 60
    progress.update(30)  # 30 in a minute: 270 left at 30/min is 9 minutes
    line = out.getvalue().splitlines()[-1]
    assert line.startswith("recording") and "30/300 notebooks recorded" in line
    assert "30.0/min" in line and "9m00s left" in line
    progress.update(31)  # on a log, a large class prints a line per 2% only
    assert len(out.getvalue().splitlines()) == 1
    progress.update(300)
    progress.close()
    assert "300/300" in out.getvalue().splitlines()[-1]


@pytest.mark.slow
def test_autograde_stops_before_executing_when_a_task_was_planted(tmp_path, monkeypatch):
    """The whole run: a pickle planted in the tasks folder between the prepare pass and the
    workers stops grading with a message naming it; nothing runs, nothing is recorded."""
    from grader import submissions
    from grader.autograde import autograde

    subs = tmp_path / "subs"
    submissions.write(submissions.complete("03-dropout", "dropout"), subs / "alice" / "03-dropout" / "dropout.ipynb")
    mark = tmp_path / "pwned"
    original = parallel.load_tasks

    def planted(folder):
        (folder / ("0" * 64 + ".task")).write_bytes(pickle.dumps(_Planted(mark)))
        return original(folder)

    monkeypatch.setattr(parallel, "load_tasks", planted)
    work = tmp_path / "work"
    with pytest.raises(SystemExit) as stop:
        autograde(subs, work, feedback=False, workers=1, log=lambda m: None)
    assert "0" * 64 + ".task" in str(stop.value) and "nothing was executed" in str(stop.value)
    assert not mark.exists()
    assert not list((work / "executed").glob("*.ipynb"))  # no worker ran a task
    assert stat.S_IMODE(os.stat(work).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(work / "gradebook.db").st_mode) == 0o600
