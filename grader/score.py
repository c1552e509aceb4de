"""Score answers in this process, without a kernel: the solution notebook's setup cell,
its solution cells (or the answers given), the experiment cells that questions read and
its test cells, hidden tests included, run in one namespace in notebook order, and each
test cell scores its points unless it raises or writes to stderr, as under nbgrader. Fast
enough to run the whole mistake catalogue in the tests; the real nbgrader pipeline is
tested separately on whole notebooks."""
from __future__ import annotations

import contextlib
import io
import sys

from . import notebooks
from .autograde import CellResult
from .paths import SOLUTIONS


def score_in_process(assignment: str, name: str, answers: dict[str, str] | None = None,
                     only: str | None = None, runs: bool = True) -> dict[str, CellResult]:
    """{test grade_id: result}. ``answers`` replaces solution cells by exercise name;
    ``only`` restricts the test cells run to one exercise's. With ``runs``, the locked
    experiment cells that the scored questions read (:func:`grader.notebooks.question_runs`)
    run where the notebook has them, each on its own like a cell, quietly; the other
    experiments are skipped (nothing graded reads them). ``runs=False`` skips them all:
    the questions on them then fail."""
    nb = notebooks.load(SOLUTIONS / assignment / f"{name}.ipynb")
    names = notebooks.exercises(nb)
    answers = answers or {}
    needed = {gid for exercise, gids in notebooks.question_runs(nb).items() if runs and only in (None, exercise)
              for gid in gids}
    namespace: dict = {"__name__": "__main__"}
    results: dict[str, CellResult] = {}
    for cell in nb.cells:
        gid = notebooks.grade_id(cell)
        if cell.cell_type != "code":
            continue
        if gid == "setup" or notebooks.is_solution(cell):
            source = answers.get(gid, notebooks.strip_markers(cell.source))
            try:
                exec(compile(source, f"<{gid}>", "exec"), namespace)
            except Exception:  # a broken answer: its tests fail below, as in the notebook
                pass
        elif gid in needed:  # an experiment that a question reads: its errors are the run's, not a test's
            try:
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    exec(compile(cell.source, f"<{gid}>", "exec"), namespace)
            except Exception:
                pass
            finally:
                plt = sys.modules.get("matplotlib.pyplot")  # its figures are for a reader: none here
                if plt is not None:
                    plt.close("all")
        elif notebooks.is_test(cell):
            exercise = notebooks.exercise_of(gid, names)
            if only is not None and exercise != only:
                continue
            points = float(notebooks.nbgrader_meta(cell).get("points", 0))
            stderr = io.StringIO()
            message = ""
            try:
                with contextlib.redirect_stderr(stderr):
                    exec(compile(notebooks.strip_markers(cell.source), f"<{gid}>", "exec"), namespace)
            except AssertionError as exc:
                message = str(exc)
            except NameError as exc:  # worded as the autograder words it
                message = f"{exc}: run the exercise's cell first (or it raised an error there)."
            except Exception as exc:
                message = f"{type(exc).__name__}: {exc}"
            if not message and stderr.getvalue():
                message = "wrote to stderr: " + stderr.getvalue()
            results[gid] = CellResult(gid, exercise, 0.0 if message else points, points, message)
    return results
