"""Grading as the instructor, not as root: on a hub the instructor grades with an ordinary
account. A real unprivileged Unix user, made for this test and removed afterwards, runs
``python -m grader autograde --workers 2`` on a class with a fork bomb and a thread storm
beside honest students: the honest ones keep full marks, the hostile ones lose only the
exercise whose cell they broke, the grader finishes in bounded time, and no process of the
user survives it. ``KEEP_UNPRIV=1`` keeps the class's folder (in /tmp) for a look."""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import hostile
from grader import submissions
from grader.paths import ROOT
from grader.score import score_in_process

pytestmark = pytest.mark.slow

A, N = hostile.ASSIGNMENT, hostile.NOTEBOOK
# appended to an answer cell: the cell never ends well, its exercise is lost, nothing else
FORK_BOMB = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
THREAD_STORM = ("import threading\nthreading.stack_size(64 * 1024)\nhold = threading.Event()\n"
                "while True:\n    try:\n        threading.Thread(target=hold.wait, daemon=True).start()\n"
                "    except RuntimeError:\n        pass\n")
HOSTILE = {"forker": ("expected_without_rescale", FORK_BOMB), "threader": ("dropout", THREAD_STORM)}
HONEST = ("alice", "bob")


def _blocked(paths) -> dict[Path, set[str]]:
    """Folders that others cannot enter on the way to ``paths`` (such as /root holding a
    pyenv Python): {folder: the entries below it that the test user needs}."""
    import pwd

    private = Path(pwd.getpwuid(0).pw_dir)  # root's home: private, whatever its mode says now
    out: dict[Path, set[str]] = {}
    for path in paths:
        parts = Path(path).parts
        for i in range(1, len(parts)):
            folder = Path(*parts[:i])
            if folder == private or not folder.stat().st_mode & 0o001:
                out.setdefault(folder, set()).add(parts[i])
                break
    return out


def _as_user(user: str, argv: list[str], views: Path) -> list[str]:
    """``argv`` run as ``user``; folders it could not enter are replaced, in a private mount
    namespace of this command only, by a view holding just the entries it needs."""
    needed = [ROOT, sys.prefix, os.path.realpath(sys.prefix), sys.base_prefix,
              os.path.realpath(sys.executable)]
    blocked = _blocked(needed)
    if not blocked:
        return ["runuser", "-u", user, "--", *argv]
    if shutil.which("unshare") is None:
        pytest.skip(f"{sorted(map(str, blocked))} cannot be entered by other users and util-linux's "
                    "unshare is missing to expose the Python installation to the test user")
    script = []
    for n, (folder, entries) in enumerate(sorted(blocked.items())):
        view = views / f"view{n}"
        view.mkdir(mode=0o755)
        view.chmod(0o755)
        for entry in sorted(entries):
            real = folder / entry
            if real.is_dir():
                (view / entry).mkdir()
                if not real.stat().st_mode & 0o001:
                    pytest.skip(f"{real} cannot be entered by other users")
            else:
                (view / entry).touch()
            script.append(f"mount --bind '{real}' '{view / entry}'")
        script.append(f"mount --rbind '{view}' '{folder}'")
    script.append(f'exec runuser -u {user} -- "$@"')
    return ["unshare", "--mount", "--propagation", "private", "sh", "-ec", "\n".join(script), "sh", *argv]


def _deserved(broken: str | None) -> dict[str, float]:
    """Per test: what the notebook scores when the exercise ``broken`` is lost."""
    answers = submissions.solution_sources(A, N)
    if broken:
        answers[broken] = "pass"
    return {gid: r.score for gid, r in score_in_process(A, N, answers).items()}


def _processes(user: str) -> list[str]:
    """``PID STAT COMMAND`` of every process of ``user`` (zombies included)."""
    run = subprocess.run(["ps", "-u", user, "-o", "pid=,stat=,args="], capture_output=True, text=True)
    return [line.strip() for line in run.stdout.splitlines() if line.strip()]


def test_an_unprivileged_instructor_grades_a_fork_bomb_and_a_thread_storm():
    if os.geteuid() != 0:
        pytest.skip("making a Unix user for the test needs root")
    for tool in ("useradd", "userdel", "runuser", "pkill", "ps"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    from grader.sandbox import Sandbox, SandboxUnavailable

    try:
        Sandbox().check()
    except SandboxUnavailable as exc:
        pytest.skip(f"no sandbox can start here: {exc}")

    user = "rn" + secrets.token_hex(5)
    base = Path(tempfile.mkdtemp(prefix="grader-unprivileged-"))
    created = False
    try:
        subprocess.run(["useradd", "--no-create-home", "--user-group", "--shell", "/bin/sh", user],
                       check=True, capture_output=True)
        created = True
        subs, work, home, views = base / "submissions", base / "work", base / "home", base / "views"
        for student in HONEST:
            submissions.write(hostile.honest(student), subs / student / A / f"{N}.ipynb")
        solutions = submissions.solution_sources(A, N)
        for student, (exercise, payload) in HOSTILE.items():
            answers = dict(solutions)
            answers[exercise] = answers[exercise] + "\n" + payload
            submissions.write(hostile.lean(submissions.fill(A, N, answers)), subs / student / A / f"{N}.ipynb")
        work.mkdir()
        home.mkdir()
        views.mkdir()
        subprocess.run(["chown", "-R", f"{user}:{user}", str(subs), str(work), str(home)], check=True)
        base.chmod(0o755)

        env = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home),
               "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg",
               "GRADER_CELL_TIMEOUT": "20", "GRADER_NOTEBOOK_TIMEOUT": "240"}
        argv = ["env", "-i", *(f"{k}={v}" for k, v in env.items()), sys.executable, "-m", "grader",
                "autograde", str(subs), "--workdir", str(work), "--workers", "2", "--no-feedback"]
        began = time.monotonic()
        run = subprocess.run(_as_user(user, argv, views), cwd=ROOT, capture_output=True, text=True, timeout=600)
        took = time.monotonic() - began
        survivors = _processes(user)
        assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:])
        live = [p for p in survivors if not p.split()[1].startswith("Z")]
        assert not live, f"processes of {user} survived the grader:\n" + "\n".join(survivors)
        for _ in range(30):  # a sandbox's own init, orphaned (dead) when its kernel was killed,
            if not survivors:  # is reaped by the machine's init, here sometimes seconds later
                break
            time.sleep(0.5)
            survivors = _processes(user)
        assert not survivors, f"processes of {user} were not reaped:\n" + "\n".join(survivors)
        assert took < 300, f"grading took {took:.0f} s"

        from grader.report import gradebook_results

        results = {r.student: r for r in gradebook_results(work)}
        assert set(results) == set(HONEST) | set(HOSTILE), run.stdout[-3000:]
        for student in HONEST:
            r = results[student]
            assert r.score == r.max_score > 0, r.exercises()
        for student, (exercise, _) in HOSTILE.items():
            got = {c.grade_id: c.score for c in results[student].cells}
            deserved = _deserved(exercise)
            assert got == deserved, (student, got, deserved)
            assert sum(got.values()) < results[student].max_score  # the broken exercise was lost
        # the broken cell says what stopped it: the thread storm reaches the process limit at
        # once; the fork bomb (slow to grow in a kernel holding torch) reaches it or the cell's
        # timeout first, whichever comes first on a loaded machine
        threader = (work / "autograded" / "threader" / A / f"{N}.ipynb").read_text()
        assert "max_processes" in threader, "the thread storm's cell should name the process limit"
        forker = (work / "autograded" / "forker" / A / f"{N}.ipynb").read_text()
        assert any(s in forker for s in ("max_processes", "processes running", "CellTimeoutError"))
        print(f"graded as {user} in {took:.0f} s (load {os.getloadavg()[0]:.1f})")
    finally:
        if created:
            subprocess.run(["pkill", "-KILL", "-u", user], capture_output=True)
            time.sleep(0.5)
            subprocess.run(["userdel", "-r", user], capture_output=True)
            subprocess.run(["userdel", user], capture_output=True)
        if not os.environ.get("KEEP_UNPRIV"):
            shutil.rmtree(base, ignore_errors=True)
