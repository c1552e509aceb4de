"""The course hub as a person uses it, in Debian's chromium (Playwright): log in, the
Assignments tab (fetch, submit, fetch feedback, open it), the formgrader's students."""
from __future__ import annotations

import re
from urllib.parse import quote

from browser import shot

LIST = "#nbgrader-assignment-list"


def login(browser, url: str, name: str, password: str):
    page = browser.page()
    page.goto(f"{url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", password)
    page.click("#login_submit")
    page.wait_for_url("**/lab**", timeout=180_000)
    _lab_ready(page)
    return page


def _lab_ready(page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="Help").wait_for(timeout=120_000)


def open_assignments(page):
    page.get_by_text("Nbgrader", exact=True).click()
    page.get_by_text("Assignment List", exact=True).click()
    page.wait_for_selector(f"{LIST} #released_assignments_list", timeout=60_000)
    return page.locator(LIST)


def fetch_and_submit(page, client, notebook, assignment="03-dropout", name="dropout"):
    """Fetch from the Assignments tab, answer (the notebook written as the student's own
    file, as if typed), then Submit from the tab."""
    panel = open_assignments(page)
    released = panel.locator("#released_assignments_list")
    released.get_by_text(assignment).wait_for()
    shot(page, "hub-1-student-released")
    released.get_by_role("button", name="Fetch").click()
    fetched = panel.locator("#fetched_assignments_list")
    fetched.get_by_text(assignment).wait_for(timeout=120_000)
    client.put_notebook(f"{assignment}/{name}.ipynb", notebook)
    shot(page, "hub-2-student-fetched")
    fetched.get_by_role("button", name="Submit").click()
    submitted = panel.locator("#submitted_assignments_list")
    submitted.get_by_role("button", name="Fetch Feedback").wait_for(timeout=120_000)
    shot(page, "hub-3-student-submitted")


def read_feedback(page, url: str, student: str, assignment="03-dropout", name="dropout") -> str:
    """Fetch Feedback from the Assignments tab, follow its "view feedback" link to the
    feedback folder in the file browser, and open the page there in a browser tab."""
    page.reload()
    _lab_ready(page)
    panel = open_assignments(page)
    submitted = panel.locator("#submitted_assignments_list")
    submitted.get_by_role("button", name="Fetch Feedback").click()
    link = submitted.locator("a", has_text="view feedback").first
    link.wait_for(timeout=120_000)
    shot(page, "hub-4-student-feedback-fetched")
    link.click()
    listing = page.locator(".jp-DirListing-content")
    listing.get_by_text(f"{name}.html").wait_for(timeout=60_000)
    shot(page, "hub-5-student-feedback-folder")
    # the folder is the submission's time, as the row shows it
    stamp = re.search(r"\d{4}-\d\d-\d\d [\d:.]+ UTC", submitted.inner_text()).group(0)
    feedback = page.context.new_page()
    feedback.goto(f"{url}/user/{student}/files/{assignment}/feedback/{quote(stamp)}/{name}.html")
    shot(feedback, "hub-6-student-feedback")
    return feedback.inner_text("body")


def formgrader_students(page, url: str, instructor: str) -> str:
    page.goto(f"{url}/user/{instructor}/formgrader/manage_students")
    page.wait_for_selector("table tbody tr td", timeout=120_000)
    page.wait_for_timeout(1000)
    shot(page, "hub-7-instructor-students")
    return page.inner_text("table")
