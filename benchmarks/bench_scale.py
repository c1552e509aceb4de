"""A class of 300 students x 5 assignments through the Dask path, workers simulated.

What the coordinator does for a class of that size, measured with stub workers that return
a stored result at once (so the figures are the coordinator's alone, not the kernels'):
  * preparing (the coordinator's part): each task written as JSON to the tasks folder and
    read back, checked field by field and its key recomputed (``grader.parallel.load_tasks``);
  * executing: every task submitted to a Dask ``LocalCluster`` of N single-threaded worker
    processes, the JSON reply checked and the executed notebook stored, as ``--scheduler`` does.
nbgrader's own passes (prepare, record, feedback) are not run here (1500 notebooks would take
the machine for an hour): give ``--per-notebook`` the seconds per notebook that
``make bench-class`` measured for them, and the total is estimated as
    fixed + coordinator phases + max(execution on the workers, N) + nbgrader passes.

    .venv/bin/python benchmarks/bench_scale.py                       # 300 x 5, 2 8 32 workers
    .venv/bin/python benchmarks/bench_scale.py --students 60 --workers 2 8
    .venv/bin/python benchmarks/bench_scale.py --full --slots 32 --exec-seconds 5.25

``--full`` runs the whole coordinator instead: a class of distinct submissions on disk,
nbgrader's passes (prepare, record, feedback, export) for real, and the workers simulated
by stubs that sleep as long as a notebook takes to execute, so this machine's cores are the
coordinator's as they would be beside a cluster. It prints each phase and how much the
whole run takes beyond the execution alone.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nbformat  # noqa: E402

from grader import notebooks, parallel  # noqa: E402
from grader.paths import assignments, source_notebooks  # noqa: E402
from grader.paths import COURSE  # noqa: E402


def stub_grade(text: str) -> str:
    """A worker that executes nothing: the task is checked as a real worker checks it, and
    its notebook comes back as the 'executed' one (a stored result)."""
    import json

    from grader.parallel import Task

    task = Task.from_json(text, "the task received")
    return json.dumps({"status": "ok", "key": task.key, "nb_json": task.nb_json, "seconds": 0.0})


def sleeping_grade(text: str, seconds: float = 0.0) -> str:
    """A stub worker that takes ``seconds`` as a real one takes to execute (it sleeps, so
    the coordinator keeps this machine's cores, as with a cluster) and returns the task's
    notebook unexecuted."""
    time.sleep(seconds)
    return stub_grade(text)


def build_class(folder: Path, students: int, names: list[str]) -> int:
    """Distinct submissions on disk: each student's released notebooks with a comment
    naming the student in the first answer cell (unanswered: executing is simulated)."""
    from grader import submissions

    count = 0
    for assignment in names:
        for source in source_notebooks(assignment):
            release = notebooks.load(COURSE / assignment / source.name)
            first = next(i for i, c in enumerate(release.cells) if notebooks.is_solution(c))
            for s in range(students):
                nb = nbformat.from_dict(release)
                nb.cells[first].source = release.cells[first].source + f"\n# s{s:03d}"
                submissions.write(nb, folder / f"s{s:03d}" / assignment / source.name)
                count += 1
    return count


def full(students: int, names: list[str], slots: int, seconds: float) -> int:
    """The whole coordinator (nbgrader's passes included) on a class through Dask, the
    workers simulated by ``slots`` sleeping stubs of ``seconds`` per notebook."""
    import functools

    from distributed import LocalCluster

    from grader.autograde import autograde

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n = build_class(tmp / "subs", students, names)
        ideal = n * seconds / slots
        print(f"full run: {students} students x {len(names)} assignments = {n} distinct notebooks; "
              f"{slots} simulated worker slots of {seconds:g} s per notebook (execution alone: "
              f"{ideal / 60:.1f} min); {os.cpu_count()} cores; load {os.getloadavg()[0]:.1f}")
        processes = max(1, min(4, slots))
        with LocalCluster(n_workers=processes, threads_per_worker=max(1, slots // processes), processes=True,
                          dashboard_address=None, memory_limit="2GB", silence_logs=logging.CRITICAL) as cluster:
            timings: dict = {}
            lines: list[str] = []
            start = time.perf_counter()
            results = autograde(tmp / "subs", tmp / "work", scheduler=cluster.scheduler_address,
                                grade=functools.partial(sleeping_grade, seconds=seconds), log=lines.append,
                                progress_stream=open(os.devnull, "w"), timings=timings)
            total = time.perf_counter() - start
        assert len(results) == n and not any(r.error for r in results), [r.error for r in results if r.error][:3]
        pages = len(list((tmp / "work" / "feedback").rglob("*.html")))
        assert pages == n, pages
        early = next((line for line in lines if line.startswith("recorded while")), "nothing recorded early")
        print("phases: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + f"; load {os.getloadavg()[0]:.1f}")
        print(f"  {early}")
        print(f"total {total / 60:.1f} min = execution alone {ideal / 60:.1f} min + {(total - ideal) / 60:.1f} min "
              f"({(total - ideal) / n * 1000:.0f} ms per notebook beyond the execution); {pages} feedback pages")
    return 0


def build_tasks(students: int, names: list[str]) -> list[parallel.Task]:
    limits = {"cell_timeout": 120.0, "sandbox": {"enabled": True}}
    tasks = []
    for assignment in names:
        for source in source_notebooks(assignment):
            release = notebooks.load(COURSE / assignment / source.name)
            tests = {notebooks.grade_id(c): (c.source, 1.0) for c in release.cells if notebooks.is_test(c)}
            first = next(i for i, c in enumerate(release.cells) if notebooks.is_solution(c))
            for s in range(students):
                nb = nbformat.from_dict(release)
                nb.cells = list(release.cells)
                nb.cells[first] = nbformat.from_dict({**release.cells[first],
                                                      "source": release.cells[first].source + f"\n# s{s:03d}"})
                key = parallel.task_key(nb, tests, {}, limits, None)
                tasks.append(parallel.Task(key, f"s{s:03d}", assignment, source.stem, nbformat.writes(nb),
                                           tests, {}, limits))
    return tasks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--workers", nargs="*", type=int, default=[2, 8, 32])
    parser.add_argument("--exec-seconds", type=float, default=6.0,
                        help="one notebook's execution on a worker (one core), for the estimate")
    parser.add_argument("--per-notebook", type=float, default=None,
                        help="nbgrader's passes, seconds per notebook (from make bench-class)")
    parser.add_argument("--fixed", type=float, default=0.0, help="nbgrader's passes, fixed seconds")
    parser.add_argument("--full", action="store_true",
                        help="run the whole coordinator (nbgrader's passes too) on a class on disk, the "
                             "workers simulated by --slots stubs that sleep --exec-seconds per notebook")
    parser.add_argument("--slots", type=int, default=32, help="--full: simulated workers")
    parser.add_argument("--assignments", type=int, default=5, help="how many of the course's assignments")
    args = parser.parse_args()
    if args.full:
        return full(args.students, assignments()[:args.assignments], args.slots, args.exec_seconds)
    from distributed import LocalCluster

    names = assignments()[:args.assignments]
    start = time.perf_counter()
    tasks = build_tasks(args.students, names)
    n = len(tasks)
    print(f"class: {args.students} students x {len(names)} assignments = {n} distinct notebooks; "
          f"built in {time.perf_counter() - start:.1f} s; load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "tasks"
        folder.mkdir()
        start = time.perf_counter()
        for task in tasks:
            (folder / f"{task.key}.task").write_text(task.to_json())
        loaded = parallel.load_tasks(folder)
        prepare = time.perf_counter() - start
        assert len(loaded) == n
        print(f"preparing (write {n} tasks as JSON, read back and check): {prepare:.1f} s "
              f"({prepare / n * 1000:.1f} ms per notebook)")
        rows = []
        for workers in args.workers:
            executed = Path(tmp) / f"executed{workers}"
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                              dashboard_address=None, memory_limit="1GB",
                              silence_logs=logging.CRITICAL) as cluster:
                start = time.perf_counter()
                outcome = parallel.execute_tasks(loaded, executed, scheduler=cluster.scheduler_address,
                                                 progress_stream=open(os.devnull, "w"), grade=stub_grade)
                seconds = time.perf_counter() - start
            assert outcome.done == n and not outcome.failures, outcome.failures[:3]
            rows.append((workers, seconds, os.getloadavg()[0]))
            print(f"executing through Dask, {workers} stub workers: {seconds:.1f} s "
                  f"({seconds / n * 1000:.1f} ms per notebook, {n / seconds * 60:.0f} notebooks/min "
                  f"through the coordinator); load {os.getloadavg()[0]:.1f}")
    print()
    print(f"{'workers':>8}{'coordinator: prepare + Dask':>30}{'execution on workers':>22}"
          + (f"{'nbgrader passes':>17}{'estimated total':>17}" if args.per_notebook is not None else ""))
    for workers, seconds, _ in rows:
        run = n * args.exec_seconds / workers
        line = f"{workers:>8}{prepare + seconds:>28.0f} s{run / 60:>19.1f} min"
        if args.per_notebook is not None:
            passes = args.fixed + n * args.per_notebook
            total = prepare + max(seconds, run) + passes
            line += f"{passes / 60:>14.1f} min{total / 60:>14.1f} min"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
