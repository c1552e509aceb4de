"""Recording and feedback while the workers still execute.

nbgrader's record pass of an assignment can run as soon as every notebook of that
assignment has been executed, and its feedback pages as soon as it is recorded. For a
class of several assignments, that coordinator work then runs while the workers execute
the other assignments instead of after all of them: on a cluster the coordinator's cores
are otherwise idle meanwhile. One record pass at a time, in the order the assignments
finish (its processes each over their own students); the feedback passes of a recorded
assignment (they only read the gradebook) beside it. ``grader.autograde`` records and gives
feedback as usual, after the execution, for whatever the pipeline did not finish.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Callable

from .nbgrader_apps import nbgrader_start


@dataclass
class _Job:
    assignment: str
    kind: str  # "record" or "feedback"
    procs: list = field(default_factory=list)  # (Popen, output file)


class Pipeline:
    """``record(assignment)`` and ``feedback(assignment)`` give the nbgrader runs of a pass
    (a list of ``(args, env)``: processes over disjoint groups of students);
    ``write_log(assignment, kind, exit codes, output)`` keeps their output (``nbgrader.log``)."""

    def __init__(self, record: Callable[[str], list[tuple[list[str], dict]]],
                 feedback: Callable[[str], list[tuple[list[str], dict]]] | None,
                 write_log: Callable[[str, str, list[int], str], None]):
        self._record, self._feedback, self._write_log = record, feedback, write_log
        self.waiting: list[str] = []
        self.recording: _Job | None = None
        self.giving: list[_Job] = []
        self.recorded: list[str] = []
        self.fed: list[str] = []
        self.closed = False

    def ready(self, assignment: str) -> None:
        """Every notebook of ``assignment`` is executed (stored or failed)."""
        if not self.closed:
            self.waiting.append(assignment)
            self.poll()

    def poll(self) -> None:
        """Collect what ended; start the next record pass and the feedback it allows."""
        if self.recording is not None and self._ended(self.recording):
            job, self.recording = self.recording, None
            self.recorded.append(job.assignment)
            if self._feedback is not None and not self.closed:
                self.giving.append(_Job(job.assignment, "feedback",
                                        [nbgrader_start(args, env) for args, env in self._feedback(job.assignment)]))
        for job in [j for j in self.giving if self._ended(j)]:
            self.giving.remove(job)
            self.fed.append(job.assignment)
        if self.recording is None and self.waiting and not self.closed:
            assignment = self.waiting.pop(0)
            self.recording = _Job(assignment, "record",
                                  [nbgrader_start(args, env) for args, env in self._record(assignment)])

    def settle(self, poll: float = 0.2) -> None:
        """Start nothing more; wait for the passes under way to end."""
        self.closed = True
        self.waiting.clear()
        while self.recording is not None or self.giving:
            running = [proc for job in (self.recording, *self.giving) if job is not None
                       for proc, _ in job.procs if proc.poll() is None]
            if running:
                try:
                    running[0].wait(timeout=poll)
                except subprocess.TimeoutExpired:
                    pass
            self.poll()

    def abort(self) -> None:
        """Ctrl-C: stop the passes under way; what they did not finish is done again."""
        self.closed = True
        self.waiting.clear()
        for job in [self.recording, *self.giving]:
            if job is None:
                continue
            for proc, out in job.procs:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                out.close()
        self.recording, self.giving = None, []

    def _ended(self, job: _Job) -> bool:
        if any(proc.poll() is None for proc, _ in job.procs):
            return False
        text = []
        for proc, out in job.procs:
            out.seek(0)
            text.append(out.read())
            out.close()
        self._write_log(job.assignment, job.kind, [proc.returncode for proc, _ in job.procs], "\n".join(text))
        return True
