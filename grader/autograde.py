"""Autograde a folder of submissions with real nbgrader, safely, in parallel.

``SUBMISSIONS_DIR/<student>/<assignment>/*.ipynb`` is collected into a working folder
(``classroom/`` for a real class) by ``grader.collect``, which refuses links and odd names
and normalises every notebook; then nbgrader ``generate_assignment``, ``autograde`` (whose
execute step is the judge: ``grader.judge``, each kernel in ``grader.sandbox``),
``generate_feedback`` and ``export`` run there. The notebooks are executed in parallel by
local worker processes or a Dask cluster between two nbgrader passes (``grader.parallel``);
only this process's nbgrader passes write the gradebook (each over its own students). Per-cell scores come back from the gradebook
and messages from the autograded notebooks (``grader.records``).
"""
from __future__ import annotations

import concurrent.futures
import os
import shutil
import threading
import time
from pathlib import Path

from .collect import collect
from .nbgrader_apps import (course_dirs, gradebook_url, nbgrader, nbgrader_many, nbgrader_start, nbgrader_watched,
                            plain, prestart, warm_passes)
from .paths import CLASSROOM, make_private, private_dir
from .pipeline import Pipeline
from .records import CellResult, NotebookResult, export_cells, message_of, results  # noqa: F401
from .sandbox import Sandbox, SandboxUnavailable

NO_SANDBOX_WARNING = ("WARNING: grading WITHOUT a sandbox (--no-sandbox): the students' code runs with "
                      "your permissions and can read or change anything you can. Use it only for "
                      "trusted submissions.")
INTERRUPTED = "not graded: the run was interrupted (grade again with --resume to finish)"

_message = message_of  # the name tests and older scripts use


def sandbox_options(sandbox: bool) -> list[str]:
    """nbgrader options for the confinement; checks that a sandbox can start at all."""
    if not sandbox:
        return ["--Sandbox.enabled=False"]
    problem = None
    try:
        Sandbox().check()
    except SandboxUnavailable as exc:
        problem = str(exc)
    if problem:
        raise SystemExit(f"Cannot autograde: {problem}\nTo grade trusted submissions anyway, "
                         "add --no-sandbox.")
    return []


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover (not Linux)
        return max(1, os.cpu_count() or 1)


def _written(folder: Path, assignment: str, pattern: str, since: float):
    """A counter of the files an nbgrader pass has written since ``since``:
    ``folder/<student>/<assignment>/<pattern>``, the phase's progress."""
    def count() -> int:
        n = 0
        for path in folder.glob(f"*/{assignment}/{pattern}"):
            try:
                n += path.stat().st_mtime >= since
            except OSError:
                continue
        return n
    return count


def _nbgrader_autograde(workdir: Path, assignment: str, dirs, options, env, log, progress=None,
                        count=None) -> None:
    """nbgrader's autograde pass; a prepare or record pass (``env``'s GRADER_PHASE) over
    disjoint groups of students, one process per group (they write different rows); the
    serial pass (no phase: nbgrader executes the notebooks itself) in one process."""
    args = ["autograde", assignment, "--force", *dirs, *options]
    if env and env.get("GRADER_PHASE"):
        runs = nbgrader_many(_split_runs(args, _students(workdir / "submitted", assignment)), env=env, progress=progress,
                             count=count)
    else:
        runs = [nbgrader_watched(*args, env=env, progress=progress, count=count)]
    _log_pass(workdir, assignment, f"autograde ({env.get('GRADER_PHASE', 'serial') if env else 'serial'})",
              [run.returncode for run in runs], "\n".join(run.stdout for run in runs),
              log if not (env or {}).get("GRADER_INJECT_ONLY") else None)


def _log_pass(workdir: Path, assignment: str, what: str, codes: list[int], output: str, log=None) -> None:
    """An nbgrader pass's output goes to ``nbgrader.log``; a failed autograde pass is told."""
    with open(workdir / "nbgrader.log", "a") as f:
        f.write(f"--- nbgrader {what} {assignment} (exit {', '.join(map(str, codes))})\n{output}\n")
    if log is not None and what.startswith("autograde") and any(codes):
        log(f"nbgrader autograde reported problems (exit {max(codes)}); grading went on:\n"
            + output.strip()[-2000:])


def _students(folder: Path, assignment: str) -> set[str]:
    """The students a pass over ``folder/<student>/<assignment>`` finds (autograde reads
    ``submitted/``, made anew by every run; generate_feedback ``autograded/``)."""
    return {p.parent.name for p in folder.glob(f"*/{assignment}")}


def _split_runs(args: list[str], students) -> list[list[str]]:
    """``nbgrader ARGS`` over disjoint groups of ``students`` (all of those the pass would
    find), one run per group (:func:`feedback_jobs`)."""
    everyone = set(students)
    groups = _groups(sorted(everyone), 1 if plain() else feedback_jobs(len(everyone)))
    return [list(args) + ([f"--CourseDirectory.student_id_exclude={','.join(sorted(everyone - set(g)))}"]
                          if len(groups) > 1 else []) for g in groups]


def _feedback_runs(workdir: Path, assignment: str, dirs) -> list[list[str]]:
    """``generate_feedback`` over disjoint groups of students, one process per group: every
    student with an autograded ``assignment`` (an earlier run's too: each in one group)."""
    return _split_runs(["generate_feedback", assignment, "--force", *dirs],
                       _students(workdir / "autograded", assignment))


def autograde(submissions: Path, workdir: Path = CLASSROOM, feedback: bool = True,
              log=print, sandbox: bool = True, workers: int | None = None,
              scheduler: str | None = None, resume: bool = False,
              progress_stream=None, timestamps=None,
              timings: dict | None = None, grade=None) -> list[NotebookResult]:
    """Grade every submission under ``submissions``; returns one result per notebook.

    ``workers``: local worker processes (default: one per core); 0 runs the judge inside
    nbgrader itself, one notebook after another, as plain nbgrader does. ``scheduler``: the
    address of a Dask scheduler whose workers execute the notebooks instead. ``resume``:
    keep the notebooks an earlier run executed (``workdir/executed``) when their content
    has not changed. Ctrl-C stops the workers; what they finished is recorded in the
    gradebook, the rest is reported as not graded. ``timestamps``: {(student, assignment):
    submission time} (an LMS's, ``grader.lms``), which nbgrader's late penalty reads.

    Entries that could not be collected are logged and listed in ``workdir/problems.txt``;
    notebooks that failed, in ``workdir/failures.txt``; nbgrader's own messages go to
    ``workdir/nbgrader.log``. The working folder is private to you (0700, the gradebook and
    the files in it 0600). ``timings``, if given, receives the seconds of each phase
    (preparing, executing, settling: waiting for the passes started while the workers
    executed, recording, feedback, reporting, total). ``grade``: what a Dask
    worker runs on a task's JSON (``benchmarks/bench_scale.py`` passes a stub that executes
    nothing, to time the coordinator alone)."""
    with warm_passes(0 if plain() else WARM_PASSES):
        return _autograde(submissions, workdir, feedback, log, sandbox, workers, scheduler, resume,
                          progress_stream, timestamps, timings, grade)


def _autograde(submissions, workdir, feedback, log, sandbox, workers, scheduler, resume,
               progress_stream, timestamps, timings, grade) -> list[NotebookResult]:
    from . import parallel

    workdir = private_dir(Path(workdir).resolve())
    phases: dict[str, float] = {} if timings is None else timings
    started = time.monotonic()
    (workdir / "nbgrader.log").write_text("")
    # The sandbox's probe (2 s) while collecting; its SystemExit comes back from result().
    prober = concurrent.futures.ThreadPoolExecutor(1)
    probing = prober.submit(sandbox_options, sandbox)
    prober.shutdown(wait=False)
    if not sandbox:
        log(NO_SANDBOX_WARNING)
    collection = collect(Path(submissions), workdir, log=log, timestamps=timestamps)
    (workdir / "problems.txt").write_text("".join(p + "\n" for p in collection.problems))
    for problem in collection.problems:
        log(f"not graded: {problem}")
    if not collection.found and not collection.refused:
        raise SystemExit(f"no submissions found under {submissions} "
                         "(expected <student>/<assignment>/<notebook>.ipynb with a known assignment)")
    db_url = gradebook_url(workdir)
    dirs = course_dirs(workdir, db_url)
    workers = default_workers() if workers is None else workers
    executed = workdir / "executed"
    if not resume:
        shutil.rmtree(executed, ignore_errors=True)
    where = (f"the Dask cluster at {scheduler}" if scheduler else
             "nbgrader itself, serially" if workers == 0 else f"{workers} local worker(s)")
    outcome = parallel.Outcome()
    tasks: list = []
    recorded_early: set[str] = set()  # recorded (and given feedback) while the workers executed
    fed_early: set[str] = set()
    counts = {a: len(students) * _notebooks_per_submission(a) for a, students in collection.found.items()}
    total = sum(counts.values())
    for assignment in sorted(collection.found):
        log(f"nbgrader: {assignment}: generating the gradebook entry")
        nbgrader("generate_assignment", assignment, "--force", *dirs)
    options = probing.result()  # SystemExit here, before any submission runs, if no sandbox can start
    make_private(workdir)  # the gradebook 0600 from its first write on
    if workers or scheduler:
        tasks_dir = workdir / "tasks"
        shutil.rmtree(tasks_dir, ignore_errors=True)
        private_dir(tasks_dir)
        procs: list = []  # local workers, warming up while the tasks are prepared
        if not scheduler and workers >= 2 and not resume:
            procs = parallel.start_workers(min(workers, total), sandbox)
        elif not scheduler and workers == 1:  # the judge in this process: its imports meanwhile
            threading.Thread(target=parallel.warm_up, args=(False,), daemon=True).start()
        try:
            progress = parallel.Progress(total, progress_stream, "prepared", phase="preparing")
            for assignment, students in collection.found.items():
                log(f"nbgrader: {assignment}: preparing {len(students)} submission(s)")
                _nbgrader_autograde(workdir, assignment, dirs, options,
                                    {"GRADER_PHASE": "harvest", parallel.TASKS_ENV: str(tasks_dir)}, log,
                                    progress, lambda: sum(1 for _ in tasks_dir.glob("*.task")))
            progress.update(total)
            progress.close()
            try:
                tasks = parallel.load_tasks(tasks_dir)
            except parallel.TaskRefused as exc:
                raise SystemExit(f"Cannot autograde: {exc}") from None
            # One assignment after another: the first is complete (and recorded) soonest.
            tasks.sort(key=lambda t: (t.assignment, t.student, t.notebook))
            phases["preparing"] = time.monotonic() - started
            kept = sum((executed / f"{t.key}.ipynb").exists() for t in tasks)
            if kept < len(tasks):
                # The record, feedback and export passes' processes start while the workers execute.
                jobs = feedback_jobs(max(len(s) for s in collection.found.values()))
                prestart(1 + jobs * (2 if feedback else 1))
            log(f"executing {len(tasks)} notebook(s) on {where}"
                + ("" if sandbox else " WITHOUT a sandbox")
                + (f" ({kept} kept from an earlier run)" if resume else ""))
            pipe = None
            if len(collection.found) > 1:  # record and give feedback on one while others execute
                record_env = {"GRADER_PHASE": "record", parallel.EXECUTED_ENV: str(executed)}
                pipe = Pipeline(
                    lambda a: [(args, record_env) for args in _split_runs(
                        ["autograde", a, "--force", *dirs, *options], _students(workdir / "submitted", a))],
                    (lambda a: [(args, None) for args in _feedback_runs(workdir, a, dirs)])
                    if feedback else None,
                    lambda a, kind, codes, out: _log_pass(workdir, a, "autograde (record, while executing)"
                                                          if kind == "record" else "generate_feedback", codes, out, log))
                left = {a: 0 for a in collection.found}
                for task in tasks:
                    left[task.assignment] += not (executed / f"{task.key}.ipynb").exists()

                def executed_one(task, left=left, pipe=pipe):
                    left[task.assignment] -= 1
                    if left[task.assignment] == 0:
                        pipe.ready(task.assignment)

                for assignment in sorted(a for a, n in left.items() if n == 0):
                    pipe.ready(assignment)
            outcome = parallel.execute_tasks(tasks, executed, workers=workers, scheduler=scheduler,
                                             progress_stream=progress_stream, log=log, grade=grade,
                                             on_done=executed_one if pipe else None, tick=pipe.poll if pipe else None,
                                             procs=procs)
        finally:
            parallel.stop_workers(procs)
        if pipe is not None:
            settling = time.monotonic()
            try:
                pipe.abort() if outcome.interrupted else pipe.settle()
            except KeyboardInterrupt:
                pipe.abort()
                outcome.interrupted = True
            phases["settling"] = time.monotonic() - settling  # the pipeline's passes under way
            recorded_early, fed_early = set(pipe.recorded), set(pipe.fed)
            if recorded_early:
                log("recorded while the workers executed: " + ", ".join(sorted(recorded_early))
                    + (f"; feedback written for {', '.join(sorted(fed_early))}" if fed_early else ""))
        phases["executing"] = outcome.seconds
        if outcome.interrupted:
            log(f"interrupted: {outcome.done + outcome.skipped} of {len(tasks)} notebook(s) graded; "
                "recording them")
    everything = []
    mark = time.monotonic()
    to_record = [a for a in collection.found if a not in recorded_early or outcome.interrupted]
    to_give = [a for a in collection.found if a not in fed_early or a in to_record] if feedback else []
    progress = parallel.Progress(sum(counts[a] for a in to_record), progress_stream, "recorded",
                                 phase="recording")
    done_before = 0
    for assignment in to_record:
        students = collection.found[assignment]
        env = None
        if workers or scheduler:
            env = {"GRADER_PHASE": "record", parallel.EXECUTED_ENV: str(executed)}
            if outcome.interrupted:
                env[parallel.INJECT_ONLY_ENV] = "1"
        log(f"nbgrader: {assignment}: recording {len(students)} submission(s)"
            + ("" if sandbox else " WITHOUT a sandbox"))
        count = _written(workdir / "autograded", assignment, "*.ipynb", time.time() - 1)
        _nbgrader_autograde(workdir, assignment, dirs, options, env, log, progress,
                            lambda: done_before + count())
        done_before += counts[assignment]
    progress.update(progress.total)
    progress.close()
    phases["recording"] = time.monotonic() - mark
    mark = time.monotonic()
    if feedback:
        progress = parallel.Progress(sum(counts[a] for a in to_give), progress_stream, "with feedback",
                                     phase="feedback")
        done_before = 0
        for assignment in to_give:
            count = _written(workdir / "feedback", assignment, "*.html", time.time() - 1)
            nbgrader_many(_feedback_runs(workdir, assignment, dirs),
                          progress=progress, count=lambda: done_before + count())
            done_before += counts[assignment]
        progress.update(progress.total)
        progress.close()
    phases["feedback"] = time.monotonic() - mark
    mark = time.monotonic()
    exporting = nbgrader_start(["export", f"--to={workdir / 'grades.csv'}", *dirs])  # beside the results
    for assignment, students in collection.found.items():
        everything.extend(results(workdir, db_url, assignment, list(students)))
    if outcome.interrupted:
        done = {(t.student, t.assignment, t.notebook) for t in tasks if (executed / f"{t.key}.ipynb").exists()}
        for r in everything:
            graded = workdir / "autograded" / r.student / r.assignment / f"{r.notebook}.ipynb"
            if r.error != "not submitted" and ((r.student, r.assignment, r.notebook) not in done
                                               or not graded.exists()):
                r.error, r.cells = INTERRUPTED, []
    graded = {(r.student, r.assignment, r.notebook) for r in everything if not r.error}
    for student, assignment, notebook, why in collection.refused:  # 0, with the reason
        if (student, assignment, notebook) not in graded:
            everything = [r for r in everything if (r.student, r.assignment, r.notebook)
                          != (student, assignment, notebook)]
            everything.append(NotebookResult(student, assignment, notebook, error=f"not graded: {why}"))
    export_cells(everything, workdir / "cells.csv")
    proc, out = exporting
    proc.wait()
    out.seek(0)
    _log_pass(workdir, "(all assignments)", "export", [proc.returncode], out.read())
    out.close()
    again = "" if outcome.interrupted else " (graded again by the coordinator)"
    failures = [f + again for f in outcome.failures] + [f"{r.student}/{r.assignment}/{r.notebook}: {r.error}"
                                         for r in everything if r.error and r.error != "not submitted"]
    (workdir / "failures.txt").write_text("".join(f + "\n" for f in failures))
    if failures or collection.problems:
        log(f"\n{len(failures)} notebook(s) with a problem"
            + (f", {len(collection.problems)} entr(y/ies) not collected" if collection.problems else "")
            + ":\n" + "\n".join("  " + f for f in failures + collection.problems))
    make_private(workdir)
    phases["reporting"] = time.monotonic() - mark
    phases["total"] = time.monotonic() - started
    if outcome.interrupted:
        raise GradingInterrupted(everything)
    return everything


FEEDBACK_GROUP = 8  # students per process of a pass at least: each process starts in 0.6 s
WARM_PASSES = 1 + max(1, min(default_workers(), 4))  # started with a run: generate_assignment, a prepare pass


def feedback_jobs(students: int) -> int:
    """How many processes share a pass over a class (prepare, record, feedback: each
    student's rows and files are apart from the others'): one per core, with at least
    FEEDBACK_GROUP students each."""
    return max(1, min(default_workers(), students // FEEDBACK_GROUP))


def _groups(students: list[str], n: int) -> list[list[str]]:
    return [students[i::n] for i in range(n)] if n > 1 else [students]


def _notebooks_per_submission(assignment: str) -> int:
    from .paths import source_notebooks

    return max(1, len(source_notebooks(assignment)))


class GradingInterrupted(KeyboardInterrupt):
    """Ctrl-C: the workers stopped; ``results`` holds what was graded and recorded."""

    def __init__(self, results_):
        super().__init__("interrupted")
        self.results = results_
