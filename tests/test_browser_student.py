"""A student in a real browser (`make lab`'s settings): opens 03-dropout, runs it all,
moves the widget and sees the figure redraw, gives a wrong answer and reads the test's
message without scrolling, fixes it and sees the pass line. The lab has no nbgrader
instructor tools, no error banner, and no page asks the internet for anything.

The course is copied to a temporary folder first: JupyterLab saves what the student types.
"""
from __future__ import annotations

import shutil

import pytest

from grader import submissions
from grader.paths import COURSE
import browser

pytestmark = pytest.mark.slow

CHROMIUM = browser.require_browser()
NOTEBOOK = "03-dropout/dropout.ipynb"
RIGHT = "expected_without_rescale = 5000.0"
WRONG = 'expected_without_rescale = "ten thousand"'  # not a number: the visible check says so


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The student's lab on a copy of course/ whose 03-dropout has every answer written."""
    root = tmp_path_factory.mktemp("student") / "course"
    shutil.copytree(COURSE, root)
    submissions.write(submissions.complete("03-dropout", "dropout"), root / NOTEBOOK)
    with browser.jupyter_lab("student", root, root, browser.ARTIFACTS / "student-lab.log") as base:
        yield base


@pytest.fixture(scope="module")
def chrome():
    b = browser.Browser(CHROMIUM)
    yield b
    b.close()


def _wait_all_ran(page, timeout=240_000):
    """Every code cell has run: each prompt shows an execution count."""
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""", timeout=timeout)


def _prompt(cell) -> str:
    return cell.locator(".jp-InputPrompt").first.text_content().strip()


def _run_answer_and_test(page, question, test_cell, source):
    """Type ``source`` into the answer cell, run it and the test cell below it (Shift+Enter
    twice, as a student would); wait until the test cell has run again."""
    before = _prompt(test_cell)
    question.locator(".cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.type(source)
    page.keyboard.press("Shift+Enter")  # runs the answer, selects its test cell
    page.keyboard.press("Shift+Enter")  # runs the test cell
    page.wait_for_function(
        "([el, before]) => { const t = el.querySelector('.jp-InputPrompt').textContent.trim();"
        " return /\\[\\d+\\]/.test(t) && t !== before; }",
        arg=[test_cell.element_handle(), before], timeout=60_000)


def _cell_with(page, text):
    """The code cell whose source contains ``text``, pinned by position (its text changes)."""
    cells = page.locator(".jp-Notebook .jp-Cell")
    found = cells.filter(has=page.locator(".jp-InputArea", has_text=text)).first.element_handle()
    index = found.evaluate("el => [...el.parentElement.children].filter(c => c.classList.contains('jp-Cell')).indexOf(el)")
    return cells.nth(index)


def test_student_runs_dropout_moves_the_widget_and_fixes_a_wrong_answer(lab, chrome):
    page = chrome.page()
    page.goto(f"{lab}/lab/tree/{NOTEBOOK}")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    page.get_by_text("| Idle").wait_for(timeout=120_000)  # the kernel has started
    browser.shot(page, "student-01-opened")

    # Run > Run All Cells
    page.locator(".lm-MenuBar-item", has_text="Run").click()
    page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()
    _wait_all_ran(page)
    passes = page.locator(".grader-pass")
    assert passes.count() >= 5, "every visible test cell shows its pass line"
    assert page.locator(".grader-fail").count() == 0
    assert "test_dropout — 2 points" in passes.first.text_content()
    browser.shot(page, "student-02-ran-all")

    # The widget: move the slider one step, the figure is drawn again for the new p.
    widget = page.locator(".widget-vbox").filter(has=page.locator(".widget-slider")).last
    widget.scroll_into_view_if_needed()
    image = widget.locator(".widget-output img").first
    image.wait_for()
    before = image.get_attribute("src")
    browser.shot(page, "student-03-widget-before")
    readout = widget.locator(".widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("0.2")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "([el, before]) => { const img = el.querySelector('.widget-output img'); return img && img.src !== before; }",
        arg=[widget.element_handle(), before], timeout=120_000)
    assert widget.locator(".widget-readout").inner_text().strip() == "0.20"
    browser.shot(page, "student-04-widget-after")

    # A wrong answer: the test cell's message is in the viewport, mistake and fix included.
    question = _cell_with(page, RIGHT)
    test_cell = _cell_with(page, "check_scaling_answer_is_a_number(expected_without_rescale)")
    question.scroll_into_view_if_needed()
    _run_answer_and_test(page, question, test_cell, WRONG)
    failure = page.locator(".grader-fail")
    failure.wait_for()
    assert failure.count() == 1
    text = failure.text_content()
    assert "test_expected_without_rescale" in text and "1 point lost" in text
    assert "The mistake:" in text and "How to fix:" in text
    test_cell.scroll_into_view_if_needed()
    box, fix = test_cell.bounding_box(), failure.locator(".grader-fix").bounding_box()
    assert 0 <= box["y"] and fix["y"] + fix["height"] <= browser.VIEWPORT["height"], \
        "the fix is readable without scrolling the cell's output"
    traceback = test_cell.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']").text_content()
    assert len(traceback.strip().splitlines()) == 1 and "grader" not in traceback.replace(
        "test_expected_without_rescale", "")
    browser.shot(page, "student-05-wrong-answer")

    # The fix: the pass line comes back.
    _run_answer_and_test(page, question, test_cell, RIGHT)
    page.locator(".grader-pass[data-test='test_expected_without_rescale']").wait_for()
    assert page.locator(".grader-fail").count() == 0
    assert "1 point" in page.locator(".grader-pass[data-test='test_expected_without_rescale']").text_content()
    browser.shot(page, "student-06-fixed")
    assert browser.error_banners(page) == []
    assert chrome.outside == [], "no page asks the internet for anything"


def test_student_lab_has_no_instructor_tools(lab, chrome):
    page = chrome.page()
    page.goto(f"{lab}/lab")
    page.locator(".lm-MenuBar-item").first.wait_for()
    page.wait_for_timeout(1500)
    menus = page.locator(".lm-MenuBar-item").all_inner_texts()
    assert "Nbgrader" not in menus and "File" in menus
    sidebar = " ".join(page.locator(".lm-TabBar-tab").all_text_contents())
    assert "Create Assignment" not in sidebar  # the instructor lab has this tab on the right
    disabled = page.evaluate(
        "JSON.parse(document.getElementById('jupyter-config-data').textContent).disabledExtensions")
    for plugin in ("formgrader", "create-assignment", "course-list", "assignment-list", "menu"):
        assert f"@jupyter/nbgrader:{plugin}" in disabled
    browser.shot(page, "student-07-no-nbgrader-tools")
    response = page.request.get(f"{lab}/formgrader")
    assert response.status == 404
    assert browser.error_banners(page) == []
    assert chrome.outside == []
