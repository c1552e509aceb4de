"""A hostile class for 03-dropout: every way of cheating or harming the grading that the
secure-grading issue lists, one student each, graded together in one real run.

Each student is honest answers (``answers``: exercise -> "correct", "stub" or a catalogued
mistake's name) plus a payload: extra cells after a given cell, or code appended to an
answer. What the student *deserves* is what its honest answers score in-process; the
payload may cost it (it sabotages its own kernel) but must never earn it anything.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from grader import notebooks, submissions
from grader.mistakes import catalogue
from grader.paths import COURSE, ROOT

ASSIGNMENT, NOTEBOOK = "03-dropout", "dropout"
SECRET = "SECRET-alice-7f3a9c"  # in alice's notebook only


@dataclass
class Hostile:
    name: str
    category: str
    answers: dict = field(default_factory=dict)  # exercise -> "correct" | "stub" | mistake name | code
    after: dict = field(default_factory=dict)  # grade_id -> extra cell source inserted after it
    append: dict = field(default_factory=dict)  # exercise -> code appended to its answer
    sabotage: bool = False  # breaks its own kernel's serving: may score below what it deserves
    extra_cells: list = field(default_factory=list)  # (position, nbgrader metadata, source)


WRONG = "no_rescale"  # a wrong dropout from the catalogue: loses points honestly

_WRITES = '''
import os, pathlib
attempts = {}
for target in [@ROOT@ + "/grader/checks/dropout.py", @ROOT@ + "/grader/checks/_common.py",
               @ROOT@ + "/solutions/03-dropout/dropout.ipynb", @WORK@ + "/gradebook.db",
               @SUBS@ + "/alice/03-dropout/dropout.ipynb", @MARKER@]:
    try:
        pathlib.Path(target).parent.mkdir(parents=True, exist_ok=True)
        with open(target, "w") as f:
            f.write("def check_dropout_training(d):\\n    return None\\n")
        attempts[target] = "WROTE"
    except Exception as exc:
        attempts[target] = type(exc).__name__
print(attempts)
'''

_READS = '''
import os, glob
found = []
for pattern in [@SUBS@ + "/*/03-dropout/*.ipynb", @ROOT@ + "/solutions/*/*.ipynb",
                @ROOT@ + "/grader/hidden/*.py", @ROOT@ + "/grader/checks/*.py",
                @WORK@ + "/autograded/*/*/*.ipynb", "/work/*/*/*.ipynb", "/home/*/*", "/tmp/*"]:
    for path in glob.glob(pattern):
        try:
            found.append((path, open(path).read()[:20000]))
        except Exception as exc:
            found.append((path, type(exc).__name__))
print(found)
print(sorted(os.listdir("/")))
'''

_EXEC_SOLUTION = '''
try:
    get_ipython().run_line_magic("run", @ROOT@ + "/solutions/03-dropout/dropout.ipynb")
except Exception as exc:
    print("no solution to run:", type(exc).__name__)
try:
    get_ipython().run_line_magic("run", @SUBS@ + "/alice/03-dropout/dropout.ipynb")
except Exception as exc:
    print("no classmate to run:", type(exc).__name__)
'''

_AST = '''
import ast
class Neuter(ast.NodeTransformer):  # every check_*(...) call becomes None
    def visit_Call(self, node):
        if isinstance(node.func, ast.Name) and node.func.id.startswith("check_"):
            return ast.Constant(None)
        return self.generic_visit(node)
get_ipython().ast_transformers.append(Neuter())
'''

_INPUT = '''
get_ipython().input_transformers_post.append(lambda lines: ["pass\\n"])
'''

_PATCH_CHECKS = '''
import sys, types
fake = types.ModuleType("grader.checks.dropout")
for name in ("check_dropout_training", "check_dropout_eval", "check_dropout_edge_cases",
             "check_dropout_randomness", "check_Dropout", "check_Dropout_mode",
             "check_DropoutMLP", "check_DropoutMLP_modes", "check_scaling_answer"):
    setattr(fake, name, lambda *a, **k: None)
for mod in ("grader.checks", "grader.checks.dropout", "grader.checks._common",
            "grader.hidden", "grader.hidden.dropout"):
    sys.modules[mod] = fake
import builtins
builtins.AssertionError = type("AssertionError", (Exception,), {})
'''

_IMPORT_HOOK = '''
import builtins, types
_real_import = builtins.__import__
def _hook(name, *args, **kwargs):
    if name.startswith("grader"):
        fake = types.ModuleType(name)
        fake.serve = lambda *a, **k: None
        fake.__getattr__ = lambda attr: (lambda *a, **k: None)
        return fake
    return _real_import(name, *args, **kwargs)
builtins.__import__ = _hook
'''

_PATCH_TORCH = '''
import torch
torch.equal = lambda *a, **k: True
torch.allclose = lambda *a, **k: True
torch.isnan = lambda x: torch.zeros_like(x, dtype=torch.bool)
torch.Tensor.__eq__ = lambda self, other: torch.ones_like(self, dtype=torch.bool)
'''

_ODD_RETURN = '''
import torch
class Sneaky(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return True
def dropout(x, p=0.5, training=True, generator=None):
    return x.as_subclass(Sneaky)
'''

_FORGED_SERVER = '''
import json, socket, struct
import grader.wire.server as _server
def _forged(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    def send(m):
        h = json.dumps({"m": m, "b": []}).encode()
        s.sendall(struct.pack("!I", len(h)) + h)
    send({"op": "hello"})
    while True:
        try:
            n = struct.unpack("!I", s.recv(4))[0]
            s.recv(n, socket.MSG_WAITALL)
        except Exception:
            return
        send({"op": "reply", "ok": True, "spied": {}})
        send({"op": "lookup", "n": "__builtins__"})
        send({"op": "reply", "ok": {"T": "j1", "d": {"dt": "float32", "sh": [10**9], "b": 0}}})
        s.sendall(struct.pack("!I", 2**31))
_server.serve = _forged
'''

# The p with the HIGHEST validation loss: wrong on purpose. The payload then rewrites the
# run's numbers, in place and by a new dict, so that this answer looks right to a check
# reading the kernel's `sweep` after the answer.
_WORST_P = """
_means = [float(v.mean()) for v in sweep["val_loss"]]
best_p = p_values[max(range(len(_means)), key=_means.__getitem__)]
"""
_TAMPER_RUN = '''
_k = p_values.index(best_p)
sweep["val_loss"][_k] -= 100.0          # in place: the tensor the kernel and the judge share
sweep = dict(sweep, val_loss=sweep["val_loss"] - 0.0)
'''

_IDENTITY = 'def dropout(x, p=0.5, training=True, generator=None):\n    return x\n'

_KILL_EXIT = "import os\nos._exit(1)\n"
_KILL_QUIT = "exit()\n"
_IGNORE_SIGINT = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n"
_MEMORY = ("import torch\ntry:\n    big = torch.ones(6 * 2**30, dtype=torch.uint8)\n    print('allocated', big.numel())\n"
           "except (MemoryError, RuntimeError) as exc:\n    print('refused:', type(exc).__name__)\n")
_PROCESSES = ('''
import threading, time
threads, stop = [], threading.Event()
try:
    for _ in range(2000):
        t = threading.Thread(target=stop.wait, daemon=True)
        t.start()
        threads.append(t)
    print("started", len(threads))
except RuntimeError as exc:
    print("refused after", len(threads), "threads:", exc)
stop.set()
''')
_FILE_SIZE = ('''
try:
    with open("big.bin", "wb") as f:
        for _ in range(300):
            f.write(b"x" * 2**20)
    print("wrote 300 MiB")
except OSError as exc:
    print("refused:", exc.errno)
''')
_STDERR = '''
import os, sys
_honest = dropout
def dropout(x, p=0.5, training=True, generator=None):
    print("debug: dropout called", file=sys.stderr)
    os.write(2, b"raw write to fd 2\\n")
    return _honest(x, p, training, generator)
'''
_LOOP = '''
def dropout(x, p=0.5, training=True, generator=None):
    while True:
        pass
'''
_CONTROL = '''
def dropout(x, p=0.5, training=True, generator=None):
    raise ValueError("=HYPERLINK(\\"http://evil\\")\\x1b[31m red \\x07 bell \\x1b]0;title\\x07")
'''


def students() -> list[Hostile]:
    h = [
        # 1. Self-inflation inside the kernel
        Hostile("h-ast-transformer", "inflation", {"dropout": WRONG}, after={"dropout": _AST}),
        Hostile("h-input-transformer", "inflation", {"dropout": WRONG}, after={"dropout": _INPUT},
                sabotage=True),
        Hostile("h-patch-checks", "inflation", {"dropout": WRONG}, after={"dropout": _PATCH_CHECKS}),
        Hostile("h-import-hook", "inflation", {"dropout": WRONG}, after={"dropout": _IMPORT_HOOK},
                sabotage=True),
        Hostile("h-patch-torch", "inflation", {"dropout": WRONG}, after={"dropout": _PATCH_TORCH}),
        # returns x's data (in a tensor subclass whose every torch call answers True): it
        # deserves what returning x deserves, whatever the subclass claims in its kernel
        Hostile("h-odd-return", "inflation", {"dropout": _IDENTITY}, append={"dropout": _ODD_RETURN}),
        Hostile("h-forged-server", "inflation", {"dropout": WRONG}, after={"dropout": _FORGED_SERVER},
                sabotage=True),
        # a question's answer made to fit by rewriting the run it is checked against
        Hostile("h-tampers-run", "inflation", {"best_p": _WORST_P}, append={"best_p": _TAMPER_RUN}),
        # 2. Reaching outside its own notebook
        Hostile("h-writes", "outside", after={"setup": _WRITES}),
        Hostile("h-reads", "outside", after={"setup": _READS}),
        Hostile("h-runs-solution", "outside", {ex: "stub" for ex in ("dropout", "Dropout", "DropoutMLP",
                                                                     "expected_without_rescale")},
                after={"setup": _EXEC_SOLUTION}),
        # 4. Death and time
        Hostile("h-os-exit", "death", after={"Dropout": _KILL_EXIT}),
        Hostile("h-exit", "death", after={"test_dropout_randomness": _KILL_QUIT}),
        Hostile("h-ignores-sigint", "death", after={"DropoutMLP": _IGNORE_SIGINT}),
        Hostile("h-loops", "death", {"dropout": "stub"}, append={"dropout": _LOOP}),
        Hostile("h-memory", "death", after={"setup": _MEMORY}),
        Hostile("h-processes", "death", after={"setup": _PROCESSES}),
        Hostile("h-file-size", "death", after={"setup": _FILE_SIZE}),
        # 5. Output traps
        Hostile("h-stderr", "output", append={"dropout": _STDERR}),
        Hostile("h-duplicate-id", "output", extra_cells=[("dropout", {"grade_id": "dropout"}, "x = 1")]),
        Hostile("h-claims-test", "output", {"dropout": WRONG},
                extra_cells=[("dropout", {"grade_id": "test_dropout"}, "pass"),
                             ("dropout", {"grade_id": "bonus", "grade": True, "points": 100}, "pass")]),
        Hostile("h-control-chars", "output", {"dropout": "stub"}, append={"dropout": _CONTROL}),
    ]
    return h


def lean(nb):
    """Drop the long experiment cells that nothing graded reads (a student may delete cells
    nothing is graded on); the runs that question exercises read stay."""
    from helpers import question_runs

    needed = {"setup", "scaling_run"} | {gid for runs in question_runs(ASSIGNMENT).values() for gid in runs}
    keep = []
    for cell in nb.cells:
        meta = notebooks.nbgrader_meta(cell)
        if cell.cell_type == "code" and meta.get("locked") and not meta.get("grade") \
                and notebooks.grade_id(cell) not in needed:
            continue
        keep.append(cell)
    nb.cells = keep
    return nb


def answer_sources(student: Hostile) -> dict[str, str]:
    """The honest answers (what the student deserves points for), by exercise."""
    solutions = submissions.solution_sources(ASSIGNMENT, NOTEBOOK)
    released = notebooks.load(COURSE / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    stubs = {notebooks.grade_id(c): c.source for c in released.cells if notebooks.is_solution(c)}
    mistakes = catalogue(ASSIGNMENT)
    out = {}
    for exercise, source in solutions.items():
        choice = student.answers.get(exercise, "correct")
        out[exercise] = (source if choice == "correct" else stubs[exercise] if choice == "stub"
                         else choice.strip("\n") if "\n" in choice else mistakes[choice].source.strip("\n"))
    return out


def _fill(source: str, context: dict) -> str:
    for key, value in context.items():
        source = source.replace(f"@{key.upper()}@", repr(value))
    return source


def notebook_of(student: Hostile, context: dict) -> nbformat.NotebookNode:
    answers = answer_sources(student)
    for exercise, extra in student.append.items():
        answers[exercise] = answers[exercise] + "\n" + _fill(extra, context)
    nb = lean(submissions.fill(ASSIGNMENT, NOTEBOOK, answers))
    for gid, source in student.after.items():
        index = next(i for i, c in enumerate(nb.cells) if notebooks.grade_id(c) == gid)
        nb.cells.insert(index + 1, nbformat.v4.new_code_cell(_fill(source, context)))
    for gid, meta, source in student.extra_cells:
        index = next(i for i, c in enumerate(nb.cells) if notebooks.grade_id(c) == gid)
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["nbgrader"] = dict(meta, solution=bool(meta.get("grade_id") == "dropout"),
                                         locked=False, schema_version=3)
        cell.metadata["nbgrader"].setdefault("grade", False)
        nb.cells.insert(index + 1, cell)
    return nb


def honest(name: str, secret: str = "") -> nbformat.NotebookNode:
    nb = lean(submissions.complete(ASSIGNMENT, NOTEBOOK))
    if secret:
        nb.cells.insert(1, nbformat.v4.new_markdown_cell(f"my notes: {secret}"))
    return nb


def build_class(folder: Path, work: Path, marker: Path) -> list[Hostile]:
    """Write the hostile class, an honest alice and bob, and the collection traps."""
    context = {"root": str(ROOT), "subs": str(folder), "work": str(work), "marker": str(marker)}
    roster = students()
    for student in roster:
        submissions.write(notebook_of(student, context), folder / student.name / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    submissions.write(honest("alice", SECRET), folder / "alice" / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    submissions.write(honest("bob"), folder / "bob" / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    # 3. Collection: links, odd names, a folder named like a notebook
    (folder / "h-link-solutions").mkdir()
    os.symlink(ROOT / "solutions" / ASSIGNMENT, folder / "h-link-solutions" / ASSIGNMENT)
    (folder / "h-link-notebook" / ASSIGNMENT).mkdir(parents=True)
    os.symlink(folder / "alice" / ASSIGNMENT / f"{NOTEBOOK}.ipynb",
               folder / "h-link-notebook" / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    os.symlink(folder / "alice", folder / "h-link-student")
    (folder / "h-dir-notebook" / ASSIGNMENT / f"{NOTEBOOK}.ipynb").mkdir(parents=True)
    (folder / "h-dangling" / ASSIGNMENT).mkdir(parents=True)
    os.symlink(folder / "nowhere.ipynb", folder / "h-dangling" / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    for odd in ("[m11]", "*", "h-?", "bad name"):
        submissions.write(honest(odd), folder / odd / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    submissions.write(honest("m1"), folder / "m1" / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    (folder / "h-not-json" / ASSIGNMENT).mkdir(parents=True)
    (folder / "h-not-json" / ASSIGNMENT / f"{NOTEBOOK}.ipynb").write_text("{ this is not json")
    return roster


REFUSED = ["h-link-solutions", "h-link-notebook", "h-link-student", "h-dir-notebook", "h-dangling",
           "[m11]", "*", "h-?", "bad name", "h-not-json"]
HONEST = ["alice", "bob", "m1"]
REFUSED_WITH_RESULT = ["h-link-solutions", "h-link-notebook", "h-dir-notebook", "h-dangling", "h-not-json"]

