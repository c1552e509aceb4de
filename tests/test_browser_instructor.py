"""An instructor in a real browser (`make instructor`'s settings) after `make demo`: the
formgrader lists the demo class with its scores, a submission opens without asking the
internet for MathJax, no error banner shows, and the class report renders its charts.

The course root is replicated in a temporary folder (the same nbgrader_config.py, the
repository's solutions/ and course/), so the demo grades into that copy's
classroom/gradebook.db exactly as `make demo` grades into the repository's.
"""
from __future__ import annotations

import re
import shutil

import pytest

import browser
from grader.paths import ROOT

pytestmark = pytest.mark.slow

CHROMIUM = browser.require_browser()
DEMO = {"alice": "17", "bob": "11", "carol": "0", "dave": "11"}  # 03-dropout, out of 17 (test_pipeline agrees)


@pytest.fixture(scope="module")
def course_root(tmp_path_factory):
    from grader.demo import demo

    root = tmp_path_factory.mktemp("instructor") / "regnorm"
    root.mkdir()
    shutil.copy2(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    for folder in ("solutions", "course"):
        (root / folder).symlink_to(ROOT / folder, target_is_directory=True)
    demo(workdir=root / "classroom", only=["03-dropout"])
    return root


@pytest.fixture(scope="module")
def lab(course_root):
    with browser.jupyter_lab("instructor", course_root, course_root,
                             browser.ARTIFACTS / "instructor-lab.log") as base:
        yield base


@pytest.fixture(scope="module")
def chrome():
    b = browser.Browser(CHROMIUM)
    yield b
    b.close()


def test_formgrader_lists_the_demo_class_with_its_scores(lab, chrome):
    page = chrome.page()
    page.goto(f"{lab}/lab")
    page.locator(".lm-MenuBar-item", has_text="Nbgrader").click()
    page.locator(".lm-Menu-item[data-command='nbgrader:open-formgrader']").click()
    frame = page.frame_locator("iframe").first
    frame.locator("text=Manage Assignments").first.wait_for()
    frame.locator("a", has_text="Manage Students").click()
    for student in DEMO:
        frame.locator("td", has_text=student).first.wait_for()
    rows = {}
    for row in frame.locator("tbody tr").all():
        cells = [c.strip() for c in row.locator("td").all_text_contents()]
        if len(cells) >= 4:
            rows[cells[1]] = cells  # name, student id, email, overall score, edit
    assert set(DEMO) <= set(rows), rows
    for student, score in DEMO.items():
        assert re.fullmatch(rf"{score}(\.0+)? / 17(\.0+)?", rows[student][3]), rows[student]
        assert "Demo" in rows[student][0]
    browser.shot(page, "instructor-01-formgrader-students")

    frame.locator("a", has_text="Manage Assignments").click()
    frame.locator("td", has_text="03-dropout").first.wait_for()
    assert frame.locator(".alert-warning:visible, .alert-danger:visible").count() == 0, "no warning banner"
    browser.shot(page, "instructor-02-formgrader-assignments")
    assert browser.error_banners(page) == []
    menus = page.locator(".lm-MenuBar-item").all_text_contents()
    assert "Nbgrader" in menus
    assert "Create Assignment" in " ".join(page.locator(".lm-TabBar-tab").all_text_contents())
    assert chrome.outside == [], "no page asks the internet for anything"


def test_a_graded_submission_opens_without_the_internet(lab, course_root, chrome):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_root / 'classroom' / 'gradebook.db'}") as gb:
        submission = gb.find_submission_notebook("dropout", "03-dropout", "dave").id
    page = chrome.page()
    page.goto(f"{lab}/formgrader/submissions/{submission}")
    page.locator(".grader-fail").first.wait_for()  # the autograded test cells show the block
    assert "How to fix:" in page.locator(".grader-fail").first.text_content()
    browser.shot(page, "instructor-03-formgrade-submission")
    assert chrome.outside == [], "MathJax and everything else are local or off"


def test_the_class_report_renders_its_charts(lab, course_root, chrome):
    assert (course_root / "classroom" / "report" / "index.html").exists()
    page = chrome.page()
    # as opened from the lab (Open in New Browser Tab): the server wants a referer without a token
    page.goto(f"{lab}/files/classroom/report/index.html", referer=f"{lab}/lab")
    for chart in ("#pass-rate", "#mistakes"):
        page.wait_for_function("sel => { const i = document.querySelector(sel); return i && i.complete "
                               "&& i.naturalWidth > 300; }", arg=chart)
    text = page.locator("#mistake-table").text_content()
    assert "test_dropout" in text and "How to fix" in text
    browser.shot(page, "instructor-04-report")
    page.locator("#mistakes").scroll_into_view_if_needed()
    browser.shot(page, "instructor-05-report-mistakes")
    assert chrome.outside == []


def test_a_manual_grade_survives_autograde_and_reaches_the_report(course_root, tmp_path):
    """A grade given in formgrader's Manual Grading (stored as the grade's manual score)
    is kept when autograde runs again, and `grader report` counts it. Runs last: it
    changes the gradebook."""
    from nbgrader.api import Gradebook

    from grader.autograde import autograde
    from grader.demo import _sandbox_available
    from grader.report import gradebook_results

    workdir = course_root / "classroom"
    db = f"sqlite:///{workdir / 'gradebook.db'}"
    with Gradebook(db) as gb:
        grade = gb.find_grade("test_expected_without_rescale_value", "dropout", "03-dropout", "dave")
        assert grade.score == 0
        grade.manual_score = 1.0  # what formgrader saves
        gb.db.commit()
    inbox = tmp_path / "inbox" / "dave"
    shutil.copytree(workdir / "demo" / "dave", inbox)
    autograde(inbox.parent, workdir, feedback=False, log=lambda m: None, sandbox=_sandbox_available())
    with Gradebook(db) as gb:
        grade = gb.find_grade("test_expected_without_rescale_value", "dropout", "03-dropout", "dave")
        assert (grade.manual_score, grade.score) == (1.0, 1.0)
    dave = next(r for r in gradebook_results(workdir) if r.student == "dave")
    assert dave.score == int(DEMO["dave"]) + 1
