"""What a test cell shows: a short styled block a student reads at a glance.

A failing test shows the test, the points lost, the mistake and the fix (HTML for
JupyterLab and the feedback pages, plain text for terminals and nbconvert), then an
``AssertionError`` whose value is the check's message and whose traceback is one line:
no grader frames, no check source. A passing test shows one line: the test and the
points earned.

Two callers, one look:

* the judge (autograding) turns a test cell's result into nbformat outputs with
  :func:`cell_outputs`;
* in the student's lab the ``check`` decorator (``grader/checks/_common.py``) calls
  :func:`show_pass` / :func:`show_failure`, which display the same block in the running
  kernel and give the raised ``AssertionError`` the same one-line traceback. A check does
  not know its cell's points there: :func:`lab_test_cell` looks the running cell's source
  up among the test cells of the release (``course/*/*.ipynb``) and of the source
  notebooks (``solutions/``, for hidden tests) and reads the ``grade_id`` and ``points``
  from that cell's nbgrader metadata. A cell found in neither (an edited copy) shows the
  check's name without points. Under nbgrader's Validate, which reports a failing cell by
  its traceback alone, the traceback carries the same block.
"""
from __future__ import annotations

import functools
import html
import json
import os
from pathlib import Path

__all__ = ["cell_outputs", "split_message", "failure_text", "failure_html", "pass_text",
           "pass_html", "short_traceback", "lab_test_cell", "show_pass", "show_failure"]

_FIX = "How to fix:"

# Colours readable on JupyterLab's light and dark themes (the block sets its own background).
_FAIL_STYLE = ("border-left:5px solid #c62828;background:#fdecea;color:#1a1a1a;"
               "padding:6px 10px;margin:2px 0;border-radius:3px;line-height:1.45;"
               "font-family:var(--jp-ui-font-family, sans-serif);font-size:13px;"
               "white-space:normal;max-width:100%;overflow-wrap:anywhere")
_PASS_STYLE = ("border-left:5px solid #2e7d32;background:#edf7ed;color:#1a1a1a;"
               "padding:3px 10px;margin:2px 0;border-radius:3px;"
               "font-family:var(--jp-ui-font-family, sans-serif);font-size:13px")


def _pts(x: float) -> str:
    x = float(x)
    word = "point" if x == 1 else "points"
    return f"{x:g} {word}"


def split_message(message: str) -> tuple[str, str]:
    """(the mistake, the fix) from a check's message ``mistake ... How to fix: fix``.

    Messages without a fix (an error that is not a check's) give ``(message, "")``."""
    message = (message or "").strip("\n")
    head, sep, tail = message.rpartition(_FIX)
    if not sep:
        return message.strip(), ""
    return head.rstrip().strip("\n"), tail.strip()


def _dedent(text: str) -> str:
    return "\n".join(line.strip() for line in text.splitlines()).strip()


def failure_text(test_id: str, message: str, lost: float | None = None) -> str:
    """Plain text: ``FAILED test_x: 2 points lost`` then the mistake and the fix, indented."""
    mistake, fix = split_message(message)
    lines = [f"FAILED {test_id}" + (f": {_pts(lost)} lost" if lost is not None else "")]
    lines += ["  " + line for line in _dedent(mistake).splitlines()]
    if fix:
        lines.append("  " + _FIX + " " + _dedent(fix).replace("\n", "\n  "))
    return "\n".join(lines)


def failure_html(test_id: str, message: str, lost: float | None = None) -> str:
    mistake, fix = split_message(message)
    esc = lambda s: html.escape(_dedent(s)).replace("\n", "<br>")  # noqa: E731
    parts = [
        f'<div class="grader-feedback grader-fail" data-test="{html.escape(test_id)}" style="{_FAIL_STYLE}">',
        f'<div><b style="color:#c62828">&#x2718; {html.escape(test_id)}</b>'
        + (f' &mdash; <b>{html.escape(_pts(lost))} lost</b>' if lost is not None else " &mdash; <b>failed</b>")
        + "</div>",
        f'<div class="grader-mistake"><b>The mistake:</b> {esc(mistake)}</div>',
    ]
    if fix:
        parts.append(f'<div class="grader-fix"><b>How to fix:</b> {esc(fix)}</div>')
    parts.append("</div>")
    return "".join(parts)


def pass_text(test_id: str, earned: float | None = None) -> str:
    return f"passed {test_id}" + (f": {_pts(earned)}" if earned is not None else "")


def pass_html(test_id: str, earned: float | None = None) -> str:
    points = f" &mdash; {html.escape(_pts(earned))}" if earned is not None else " &mdash; passed"
    return (f'<div class="grader-feedback grader-pass" data-test="{html.escape(test_id)}" '
            f'style="{_PASS_STYLE}"><b style="color:#2e7d32">&#x2714; {html.escape(test_id)}</b>'
            f"{points}</div>")


def short_traceback(test_id: str) -> list[str]:
    """The error's traceback: one line, no frames (the block above says what and why)."""
    return [f"\x1b[0;31mAssertionError\x1b[0m: {test_id} failed (the message above says why)"]


def cell_outputs(test_id: str, earned: float, available: float, message: str | None) -> list[dict]:
    """nbformat v4 outputs of an autograded test cell.

    Failure (``message`` is not None): a display_data with the styled block (text/html and
    text/plain), then exactly one ``error`` output, ename ``AssertionError``, evalue the
    message, a one-line traceback. Pass: one display_data line (no error, no stream, no
    execute_result, so nbgrader gives the cell its points)."""
    if message is not None:
        lost = max(float(available) - float(earned), 0.0)
        return [
            {"output_type": "display_data", "metadata": {},
             "data": {"text/html": failure_html(test_id, message, lost),
                      "text/plain": failure_text(test_id, message, lost)}},
            {"output_type": "error", "ename": "AssertionError", "evalue": message,
             "traceback": short_traceback(test_id)},
        ]
    return [{"output_type": "display_data", "metadata": {},
             "data": {"text/html": pass_html(test_id, earned), "text/plain": pass_text(test_id, earned)}}]


# ---------------------------------------------------------------------------------------
# In the student's lab: the same block, displayed by the check decorator.

class _Block:
    """An object IPython displays as HTML (JupyterLab) or text (terminal IPython)."""

    def __init__(self, html_: str, text: str) -> None:
        self._html, self._text = html_, text

    def _repr_html_(self) -> str:
        return self._html

    def __repr__(self) -> str:
        return self._text


def _kernel_shell():
    """The running IPython kernel's shell, or None (plain Python, pytest, the judge)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return shell if shell is not None and getattr(shell, "kernel", None) is not None else None


def _normal(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


@functools.lru_cache(maxsize=1)
def _released_test_cells() -> dict[str, tuple[str, float]]:
    """{normalised source: (grade_id, points)} of every test cell of the release, and of
    the source notebooks (hidden tests, as autograding runs them), where they exist."""
    from .notebooks import strip_markers
    from .paths import COURSE, SOLUTIONS

    cells: dict[str, tuple[str, float]] = {}
    for path in sorted(COURSE.glob("*/*.ipynb")) + sorted(SOLUTIONS.glob("*/*.ipynb")):
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for cell in nb.get("cells", []):
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if cell.get("cell_type") == "code" and meta.get("grade") and meta.get("grade_id"):
                source = cell.get("source", "")
                source = "".join(source) if isinstance(source, list) else source
                cells.setdefault(_normal(strip_markers(source)), (meta["grade_id"], float(meta.get("points", 0))))
    return cells


def lab_test_cell(source: str | None = None) -> tuple[str, float] | None:
    """(grade_id, points) of the released test cell whose source is ``source`` (default:
    the cell the kernel is running), or None."""
    if source is None:
        shell = _kernel_shell()
        if shell is None:
            return None
        history = shell.user_ns.get("_ih") or [""]
        source = history[-1]
    return _released_test_cells().get(_normal(source))


def show_pass(check_name: str) -> None:
    """In a kernel: the pass line of the running test cell. Elsewhere: nothing."""
    if _kernel_shell() is None:
        return
    found = lab_test_cell()
    test_id, points = found if found else (check_name, None)
    from IPython.display import display

    display(_Block(pass_html(test_id, points), pass_text(test_id, points)))


def show_failure(check_name: str, exc: BaseException) -> None:
    """In a kernel: display the failure block and give ``exc`` the one-line traceback
    IPython shows instead of the grader's frames. Elsewhere: nothing."""
    if _kernel_shell() is None:
        return
    found = lab_test_cell()
    test_id, points = found if found else (check_name, None)
    message = str(exc)
    from IPython.display import display

    display(_Block(failure_html(test_id, message, points), failure_text(test_id, message, points)))
    lines = short_traceback(test_id)
    if os.environ.get("NBGRADER_EXECUTION") == "validate":
        # nbgrader's Validate shows a failing cell's traceback, not the block displayed
        # above it: there the traceback carries the same mistake and fix.
        lines = [failure_text(test_id, message, points)] + lines
    exc._render_traceback_ = lambda: lines  # read by IPython's showtraceback
