"""Tables for people: one student's rows per exercise, the class's scores, and what the
class got wrong."""
from __future__ import annotations

from collections import Counter, defaultdict

from .autograde import NotebookResult

# Messages of a test that failed because its exercise was never written: the stub still
# raises, or (for a variable) the name was never defined.
_NOT_ATTEMPTED = ("NotImplementedError", "is not defined")


def _pts(x: float) -> str:
    return f"{x:g}"


def exercise_rows(result: NotebookResult, messages: bool = True) -> str:
    """One row per exercise: points earned / available, then each failing test's message."""
    lines = [f"{result.assignment}/{result.notebook}.ipynb"]
    if result.error and not result.cells:
        return lines[0] + f": {result.error}"
    width = max([len(name) for name, *_ in result.exercises()] + [8])
    for name, earned, available, failures in result.exercises():
        mark = "ok  " if earned == available else "FAIL"
        lines.append(f"  {mark} {name:<{width}}  {_pts(earned):>4} / {_pts(available)}")
        if messages:
            for failure in failures:
                lines.append("         " + failure.replace("\n", "\n           "))
    lines.append(f"  {'total':<{width + 5}}  {_pts(result.score):>4} / {_pts(result.max_score)}")
    return "\n".join(lines)


def score_table(results: list[NotebookResult]) -> str:
    """Students down, notebooks across, points earned / available."""
    columns = sorted({f"{r.assignment}/{r.notebook}" for r in results})
    by_student: dict[str, dict[str, NotebookResult]] = defaultdict(dict)
    for r in results:
        by_student[r.student][f"{r.assignment}/{r.notebook}"] = r
    width = max(len(c) for c in columns + ["student"])
    header = f"{'student':<12}" + "".join(f"{c:>{width + 2}}" for c in columns) + f"{'total':>12}"
    lines = [header, "-" * len(header)]
    for student in sorted(by_student):
        cells, earned, available = [], 0.0, 0.0
        for c in columns:
            r = by_student[student].get(c)
            if r is None or (r.error and not r.cells):
                cells.append(f"{'-':>{width + 2}}")
                continue
            earned += r.score
            available += r.max_score
            cells.append(f"{_pts(r.score) + ' / ' + _pts(r.max_score):>{width + 2}}")
        lines.append(f"{student:<12}" + "".join(cells) + f"{_pts(earned) + ' / ' + _pts(available):>12}")
    return "\n".join(lines)


def class_mistakes(results: list[NotebookResult], top: int = 12) -> str:
    """The test cells the class failed most, with the commonest message for each; cells
    failed only because the exercise was not attempted are counted apart."""
    failed: Counter = Counter()
    untried: Counter = Counter()
    messages: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        for c in r.cells:
            if c.score >= c.max_score:
                continue
            key = f"{r.assignment}/{c.grade_id}"
            if any(marker in c.message for marker in _NOT_ATTEMPTED):
                untried[key] += 1
                continue
            failed[key] += 1
            messages[key][c.message.splitlines()[0] if c.message else "(no message)"] += 1
    if not failed and not untried:
        return "Nobody lost a point."
    lines = ["What the class got wrong (students failing each test, commonest message):"]
    for key, n in failed.most_common(top):
        message, _ = messages[key].most_common(1)[0]
        lines.append(f"  {n:>3}  {key}\n         {message}")
    if untried:
        lines.append("Not attempted (the stub still raises NotImplementedError, or the answer is undefined): "
                     + ", ".join(f"{k} x{n}" for k, n in untried.most_common()))
    return "\n".join(lines)
