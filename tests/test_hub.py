"""A class on the course hub, end to end (deploy/hub/, README "Teaching a class").

A real JupyterHub on loopback (PAM login, the standard local spawner: every server runs as
its own Unix user), configured by `deploy/hub/install.sh`, with one instructor and three
students made for the test: one correct, one with the typical mistakes, one hostile. The
whole nbgrader cycle goes through the servers' own APIs, as the lab's buttons do: the
instructor generates and releases 03-dropout from the formgrader; each student fetches it
from the Assignments tab's API, writes their answers through the contents API, validates
and submits; the instructor collects from the formgrader, autogrades the hostile submission
with the formgrader's Autograde button, then the whole class with `python -m grader
autograde --workers 2` in their own account (no root), releases feedback from the
formgrader; the students fetch it. Then: the gradebook's scores, the feedback in each
student's home, the permissions a class relies on, and a hub log without tracebacks.

Needs root (users, PAM, the local spawner) and configurable-http-proxy (`npm install -g
configurable-http-proxy`; `.ci/run` installs it). It skips, saying why, without them, and
fails instead where GRADER_REQUIRE_HUB is set (CI).
"""
from __future__ import annotations

import os
import re
import time
import shutil
import sys
from pathlib import Path

import pytest

from grader import submissions
from grader.mistakes import demo_mistakes
from grader.paths import ROOT
from grader.score import score_in_process

sys.path.insert(0, str(Path(__file__).parent))
import hostile  # noqa: E402
import hub_walk  # noqa: E402
from browser import Browser, chromium_path  # noqa: E402
from hub import Hub, Users, open_to_others  # noqa: E402

pytestmark = pytest.mark.slow

ASSIGNMENT, NOTEBOOK = "03-dropout", "dropout"
COURSE_ID = "regnorm"
HOSTILE = next(h for h in hostile.students() if h.name == "h-patch-checks")


def _require() -> None:
    missing = []
    if os.geteuid() != 0:
        missing.append("root (it creates Unix users and runs JupyterHub's local spawner)")
    if not shutil.which("configurable-http-proxy"):
        missing.append("configurable-http-proxy (`npm install -g configurable-http-proxy@5`)")
    if missing:
        reason = "the hub test needs " + " and ".join(missing)
        if os.environ.get("GRADER_REQUIRE_HUB"):
            pytest.fail(reason)
        pytest.skip(reason)


def _notebooks() -> dict:
    return {
        "a": submissions.complete(ASSIGNMENT, NOTEBOOK),
        "b": submissions.with_mistakes(ASSIGNMENT, NOTEBOOK, demo_mistakes(ASSIGNMENT).values()),
        "c": hostile.notebook_of(HOSTILE, {"root": str(ROOT), "subs": "/tmp", "work": "/tmp",
                                           "marker": "/tmp/regnorm-hub-marker"}),
    }


def _expected() -> dict:
    """What each student deserves: their honest answers scored in-process."""
    sources = submissions.solution_sources(ASSIGNMENT, NOTEBOOK)
    mistaken = dict(sources, **{m.exercise: m.source for m in demo_mistakes(ASSIGNMENT).values()})
    return {role: sum(r.score for r in score_in_process(ASSIGNMENT, NOTEBOOK, answers).values())
            for role, answers in (("a", sources), ("b", mistaken), ("c", hostile.answer_sources(HOSTILE)))}


def _scores(gradebook: Path, students: dict) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{gradebook}") as gb:
        return {role: gb.find_submission_notebook(NOTEBOOK, ASSIGNMENT, name).score
                for role, name in students.items()}


def _ok(response, what: str) -> dict:
    assert response.status_code == 200, f"{what}: {response.status_code} {response.text[:500]}"
    body = response.json()
    if isinstance(body, dict) and body.get("success") is False:
        raise AssertionError(f"{what}: {body.get('value') or body.get('error') or body}"[:2000])
    return body


@pytest.fixture(scope="module")
def cycle():
    _require()
    users = Users(["i", "a", "b", "c"])
    browser = None
    facts: dict = {"names": {r: users.names[r] for r in "abc"}, "seconds": {}}
    clock = [time.time()]

    def lap(what: str) -> None:
        now = time.time()
        facts["seconds"][what] = round(now - clock[0], 1)
        clock[0] = now

    with open_to_others(ROOT, Path(sys.executable).resolve()):
        hub = Hub(users, "i", ["a", "b", "c"])
        try:
            users.create()
            installed = hub.install()
            assert installed.returncode == 0, installed.stdout + installed.stderr
            again = hub.install()  # idempotent: a second run changes nothing that matters
            assert again.returncode == 0, again.stdout + again.stderr
            hub.start()
            lap("install")
            teacher = hub.login(users.names["i"], users.password)
            students = {r: hub.login(users.names[r], users.password) for r in "abc"}
            facts["spawn_seconds"] = [c.start_server() for c in (teacher, *students.values())]
            lap("spawn")
            fg = "formgrader/api/assignment/" + ASSIGNMENT
            _ok(teacher.server("POST", f"{fg}/assign"), "generate")
            _ok(teacher.server("POST", f"{fg}/release"), "release")
            lap("release")
            nbs = _notebooks()
            facts["listed"], facts["validate"] = {}, {}
            path = f"{ASSIGNMENT}/{NOTEBOOK}.ipynb"
            browser = Browser(chromium_path()) if chromium_path() else None
            if browser:
                pages = {"a": hub_walk.login(browser, hub.url, users.names["a"], users.password)}
            for role, client in students.items():
                facts["listed"][role] = _ok(client.server("GET", "assignments", params={"course_id": COURSE_ID}),
                                            "list")
                if browser and role == "a":  # in the browser: the Assignments tab's Fetch and Submit
                    hub_walk.fetch_and_submit(pages["a"], client, nbs[role], ASSIGNMENT, NOTEBOOK)
                else:
                    _ok(client.server("POST", "assignments/fetch",
                                      data={"course_id": COURSE_ID, "assignment_id": ASSIGNMENT}), "fetch")
                    client.put_notebook(path, nbs[role])
                facts["validate"][role] = _ok(client.server("POST", "assignments/validate", data={"path": path}),
                                              "validate")["value"]
                if not (browser and role == "a"):
                    _ok(client.server("POST", "assignments/submit",
                                      data={"course_id": COURSE_ID, "assignment_id": ASSIGNMENT}), "submit")
            facts["rss_mb"] = _rss_mb(users)
            facts["denied"] = _permissions(hub, users, teacher, students)
            lap("students")
            _ok(teacher.server("POST", f"{fg}/collect"), "collect")
            course = users.home("i") / "regnorm"
            gradebook = course / "classroom" / "gradebook.db"
            # The formgrader's Autograde button on the hostile submission (the judge, not the kernel).
            auto = teacher.server("POST", f"formgrader/api/submission/{ASSIGNMENT}/{users.names['c']}/autograde")
            facts["button"] = _ok(auto, "autograde button")
            facts["button_score"] = _scores(gradebook, {"c": users.names["c"]})["c"]
            lap("button")
            # The class, graded by the instructor's own account, two workers.
            graded = teacher.run_as("python", "-m", "grader", "autograde", "classroom/submitted",
                                    "--workers", "2", cwd=str(course))
            facts["autograde"] = graded
            assert graded.returncode == 0, graded.stdout[-3000:] + graded.stderr[-3000:]
            facts["scores"] = _scores(gradebook, facts["names"])
            lap("autograde")
            facts["expected"] = _expected()
            lap("expected")
            _ok(teacher.server("POST", f"{fg}/release_feedback"), "release feedback")
            facts["feedback"] = {}
            if browser:
                facts["browser_feedback"] = hub_walk.read_feedback(pages["a"], hub.url, users.names["a"],
                                                                   ASSIGNMENT, NOTEBOOK)
                teacher_page = hub_walk.login(browser, hub.url, users.names["i"], users.password)
                facts["formgrader_students"] = hub_walk.formgrader_students(teacher_page, hub.url,
                                                                            users.names["i"])
                facts["outside_requests"] = list(browser.outside)
            for role, client in students.items():
                if not (browser and role == "a"):
                    _ok(client.server("POST", "assignments/fetch_feedback",
                                        data={"course_id": COURSE_ID, "assignment_id": ASSIGNMENT}),
                        "fetch feedback")
                pages = sorted(users.home(role).glob(f"{ASSIGNMENT}/feedback/*/{NOTEBOOK}.html"))
                facts["feedback"][role] = pages[-1].read_text() if pages else None
            facts["modes"] = {"classroom": (course / "classroom").stat().st_mode & 0o777,
                              "homes": {r: users.home(r).stat().st_mode & 0o777 for r in "iabc"}}
            facts["log"] = hub.log.read_text()
            lap("feedback")
            yield facts
        finally:
            if browser:
                browser.close()
            hub.stop()
            users.remove()
            hub.cleanup()


def _rss_mb(users) -> dict:
    """Resident memory of each user's processes, in MB (their server and any kernel)."""
    import subprocess

    out = {}
    for role, name in users.names.items():
        ps = subprocess.run(["ps", "-u", name, "-o", "rss="], capture_output=True, text=True)
        out[role] = round(sum(int(x) for x in ps.stdout.split()) / 1024)
    return out


def _permissions(hub, users, teacher, students) -> dict:
    """What student c (hostile) can reach of the others, tried from their own account."""
    c, a = students["c"], users.names["a"]
    home_a = users.home("a")
    inbound = hub.exchange / COURSE_ID / "inbound"
    feedback = hub.exchange / COURSE_ID / "feedback"
    tries = {
        "other home": c.run_as("ls", str(home_a)),
        "other notebook": c.run_as("cat", str(home_a / ASSIGNMENT / f"{NOTEBOOK}.ipynb")),
        "inbound listing": c.run_as("ls", str(inbound)),
        "feedback listing": c.run_as("ls", str(feedback)),
        "instructor course": c.run_as("ls", str(users.home("i") / "regnorm")),
    }
    out = {what: r.returncode != 0 for what, r in tries.items()}
    out["other server"] = c.server("GET", "api/status", user=a).status_code
    out["formgrader"] = c.server("GET", "formgrader/api/assignments", user=users.names["i"]).status_code
    out["own formgrader"] = c.server("GET", "formgrader/api/assignments").status_code
    out["own status"] = c.server("GET", "api/status").status_code
    return out


def test_students_see_the_released_assignment_in_their_assignments_tab(cycle):
    for role, listing in cycle["listed"].items():
        ids = {(a["course_id"], a["assignment_id"], a["status"]) for a in listing["value"]}
        assert (COURSE_ID, ASSIGNMENT, "released") in ids, (role, listing)


def test_validate_passes_the_correct_notebook_and_names_the_mistakes(cycle):
    v = cycle["validate"]
    assert not v["a"].get("failed") and not v["a"].get("changed"), v["a"]
    failures = " ".join(f.get("error", "") for f in v["b"].get("failed", []))
    assert "How to fix" in failures, v["b"]


def test_the_class_is_graded_as_it_deserves(cycle):
    assert cycle["scores"] == cycle["expected"], cycle["autograde"].stdout[-3000:]
    assert cycle["scores"]["a"] > cycle["scores"]["b"] >= 0


def test_the_formgrader_autograde_button_grades_through_the_judge(cycle):
    # h-patch-checks replaces the checks in its own kernel: in plain nbgrader it would pass.
    assert cycle["button"]["success"], cycle["button"]
    assert cycle["button_score"] == cycle["expected"]["c"]


def test_every_student_fetches_their_own_feedback(cycle):
    for role, page in cycle["feedback"].items():
        assert page, f"student {role} found no feedback"
        shown = re.search(r"Score:\s*([\d.]+)\s*/\s*([\d.]+)", page)
        assert shown and float(shown.group(1)) == cycle["scores"][role], (role, shown and shown.group(0))
    assert "How to fix" in cycle["feedback"]["b"]


def test_permissions_a_class_relies_on(cycle):
    denied = cycle["denied"]
    for what in ("other home", "other notebook", "inbound listing", "feedback listing", "instructor course"):
        assert denied[what], f"a student could read: {what}"
    assert denied["other server"] == 403, denied
    assert denied["formgrader"] == 403, denied
    assert denied["own formgrader"] == 404, denied  # the student lab has no formgrader
    assert denied["own status"] == 200, denied
    assert cycle["modes"]["classroom"] == 0o700
    assert all(mode == 0o700 for mode in cycle["modes"]["homes"].values()), cycle["modes"]


def test_a_student_and_the_instructor_in_the_browser(cycle):
    if "browser_feedback" not in cycle:
        pytest.skip("the browser walk needs Debian's chromium (`apt-get install chromium`; .ci/run installs it)")
    # the student fetched, submitted and read their feedback from the Assignments tab
    assert "Score: " in cycle["browser_feedback"] and "test_dropout" in cycle["browser_feedback"]
    assert f"{cycle['scores']['a']:g} / " in cycle["formgrader_students"]
    for role in "abc":  # the instructor sees the whole class in the formgrader
        assert cycle["names"][role] in cycle["formgrader_students"]
    assert not cycle["outside_requests"], cycle["outside_requests"]


def test_the_hub_log_has_no_tracebacks(cycle):
    print("seconds per phase:", cycle["seconds"], "resident MB per user after validate:", cycle["rss_mb"])
    assert "Traceback" not in cycle.get("log", ""), cycle["log"][-4000:]
