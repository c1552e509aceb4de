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
    args = parser.parse_args()
    from distributed import LocalCluster

    names = assignments()
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
