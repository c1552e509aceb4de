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


# ---------------------------------------------------------------------------------------
# The class report as a page: what an instructor reads before the next lecture.

def _is_untried(message: str) -> bool:
    return any(marker in message for marker in _NOT_ATTEMPTED)


def exercise_outcomes(results: list[NotebookResult]) -> list[tuple[str, int, int, int]]:
    """Rows (assignment/exercise, students with full marks, students who tried and lost
    points, students who did not attempt it) in course order."""
    rows: dict[str, list[int]] = {}
    for r in sorted(results, key=lambda r: (r.assignment, r.notebook)):
        per_exercise: dict[str, list] = {}
        for c in r.cells:
            entry = per_exercise.setdefault(c.exercise or c.grade_id, [0.0, 0.0, True])
            entry[0] += c.score
            entry[1] += c.max_score
            if c.score < c.max_score and not _is_untried(c.message):
                entry[2] = False  # a real attempt lost points
            if c.score > 0:
                entry[2] = False
        for name, (earned, available, untried) in per_exercise.items():
            row = rows.setdefault(f"{r.assignment}/{name}", [0, 0, 0])
            if earned >= available:
                row[0] += 1
            elif untried:
                row[2] += 1
            else:
                row[1] += 1
    return [(key, *counts) for key, counts in rows.items()]


def commonest_mistakes(results: list[NotebookResult], top: int = 10) -> list[tuple[str, str, int, str]]:
    """(assignment/test, the mistake's first line, students who made it, the whole
    message), most frequent first; unattempted exercises are not mistakes."""
    students: dict[tuple[str, str], set] = defaultdict(set)
    full: dict[tuple[str, str], str] = {}
    for r in results:
        for c in r.cells:
            if c.score >= c.max_score or not c.message or _is_untried(c.message):
                continue
            key = (f"{r.assignment}/{c.grade_id}", c.message.strip().splitlines()[0])
            students[key].add(r.student)
            full.setdefault(key, c.message.strip())
    ranked = sorted(students, key=lambda k: (-len(students[k]), k))
    return [(test, first, len(students[(test, first)]), full[(test, first)]) for test, first in ranked[:top]]


def _figures(results: list[NotebookResult], folder) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import textwrap

    made = {}
    outcomes = exercise_outcomes(results)
    if outcomes:
        labels = [key for key, *_ in outcomes][::-1]
        passed, failed, untried = (
            [row[i] for row in outcomes][::-1] for i in (1, 2, 3))
        total = [p + f + u for p, f, u in zip(passed, failed, untried)]
        fig, ax = plt.subplots(figsize=(8, 0.34 * len(labels) + 1.6), dpi=110)
        ax.barh(labels, passed, color="#2e7d32", label="full marks")
        ax.barh(labels, failed, left=passed, color="#c62828", label="lost points")
        ax.barh(labels, untried, left=[p + f for p, f in zip(passed, failed)], color="#bdbdbd",
                label="not attempted")
        for y, (p, n) in enumerate(zip(passed, total)):
            ax.text(n + 0.05, y, f"{100 * p / n:.0f}%" if n else "", va="center", fontsize=8)
        ax.set_xlabel("students")
        ax.set_xlim(0, max(total) * 1.15 + 0.1)
        ax.set_title("Pass rate per exercise (share of students with full marks)", pad=24)
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8, frameon=False)
        ax.tick_params(axis="y", labelsize=8)
        fig.tight_layout()
        fig.savefig(folder / "pass_rate.png", bbox_inches="tight")
        plt.close(fig)
        made["pass_rate"] = "pass_rate.png"
    mistakes = commonest_mistakes(results)
    if mistakes:
        labels = ["\n".join(textwrap.wrap(f"{test}: {first}", 70, max_lines=2, placeholder=" ..."))
                  for test, first, _, _ in mistakes][::-1]
        counts = [n for *_, n, _ in mistakes][::-1]
        fig, ax = plt.subplots(figsize=(9, 0.55 * len(labels) + 1.2), dpi=110)
        ax.barh(range(len(labels)), counts, color="#c62828")
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel("students who made the mistake")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_title("Commonest mistakes")
        fig.tight_layout()
        fig.savefig(folder / "mistakes.png", bbox_inches="tight")
        plt.close(fig)
        made["mistakes"] = "mistakes.png"
    return made


def write_html(results: list[NotebookResult], folder, title: str = "Class report") -> "Path":
    """``folder/index.html``, and ``pass_rate.png`` and ``mistakes.png`` beside it: each
    exercise's pass rate, the commonest mistakes with how many students made them, the
    score table. The page loads nothing from the internet."""
    import datetime as _dt
    import html
    from pathlib import Path

    import base64

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # The page carries its figures (a single file to open in JupyterLab or mail); the PNG
    # files stay beside it for slides.
    figures = {name: "data:image/png;base64," + base64.b64encode((folder / png).read_bytes()).decode()
               for name, png in _figures(results, folder).items()}
    esc = html.escape
    students = sorted({r.student for r in results})
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{esc(title)}</title><style>",
        "body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#1a1a1a}",
        "img{max-width:100%;border:1px solid #ddd}table{border-collapse:collapse;font-size:14px}",
        "td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}",
        "td.n{text-align:right}pre{white-space:pre-wrap;margin:0;font-size:13px}",
        "</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p>{len(students)} student(s), {len({r.assignment for r in results})} assignment(s); "
        f"written {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}.</p>",
        "<h2>Pass rate per exercise</h2>",
    ]
    if "pass_rate" in figures:
        parts.append(f"<img id='pass-rate' src='{figures['pass_rate']}' alt='pass rate per exercise'>")
    parts.append("<table id='outcomes'><tr><th>exercise</th><th>full marks</th><th>lost points</th>"
                 "<th>not attempted</th></tr>")
    for key, p, f, u in exercise_outcomes(results):
        parts.append(f"<tr><td>{esc(key)}</td><td class='n'>{p}</td><td class='n'>{f}</td><td class='n'>{u}</td></tr>")
    parts.append("</table><h2>Commonest mistakes</h2>")
    mistakes = commonest_mistakes(results)
    if "mistakes" in figures:
        parts.append(f"<img id='mistakes' src='{figures['mistakes']}' alt='commonest mistakes'>")
    if mistakes:
        parts.append("<table id='mistake-table'><tr><th>students</th><th>test</th><th>message</th></tr>")
        for test, _, n, message in mistakes:
            parts.append(f"<tr><td class='n'>{n}</td><td>{esc(test)}</td><td><pre>{esc(message)}</pre></td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p>Nobody made a mistake the checks recognise.</p>")
    parts.append(f"<h2>Scores</h2><pre id='scores'>{esc(score_table(results)) if results else 'No results.'}</pre>")
    parts.append("</body></html>")
    path = folder / "index.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def gradebook_results(workdir) -> list[NotebookResult]:
    """Every graded submission in ``workdir/gradebook.db`` (manual grades included: the
    gradebook's score is the manual one where a grader gave one), with the messages of
    ``workdir/autograded``."""
    from pathlib import Path

    from nbgrader.api import Gradebook

    from .paths import assignments
    from .records import results as notebook_results

    workdir = Path(workdir)
    if not (workdir / "gradebook.db").exists():
        return []
    known = set(assignments())
    pairs = []
    db_url = f"sqlite:///{workdir / 'gradebook.db'}"
    with Gradebook(db_url) as gb:
        for assignment in gb.assignments:
            if assignment.name not in known:
                continue
            for submission in assignment.submissions:
                pairs.append((assignment.name, submission.student.id))
    out = []
    for assignment, student in sorted(pairs):
        out.extend(r for r in notebook_results(workdir, db_url, assignment, student) if r.cells or not r.error)
    return out
