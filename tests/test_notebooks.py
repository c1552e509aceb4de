"""Hygiene of every assignment, without running a kernel: course/ is exactly nbgrader's
release of solutions/, nothing leaks, metadata follows the contract, test cells are safe
under nbgrader's scoring rules."""
from __future__ import annotations

import ast
import json
import re

import pytest

from grader import notebooks
from grader.paths import COURSE, ROOT, SOLUTIONS, assignments, source_notebooks
from grader.release import generate

# ../shared/CONTRACT.md: the graded exercises of each assignment, by name. Extra
# exercises may be added; these may not be renamed or dropped.
CONTRACT = {
    "01-bias-variance": ("bias_variance", ["mse_cost", "objective", "sample_predictions", "bias_variance_decomposition"]),
    "02-weight-decay": ("weight_decay", ["l1_penalty", "l2_penalty", "sgd_step", "soft_threshold", "no_decay_param_groups",
                                         "adamw_step"]),
    "03-dropout": ("dropout", ["dropout", "Dropout", "DropoutMLP"]),
    "04-batchnorm": ("batchnorm", ["batch_norm", "BatchNorm", "identity_affine", "LeNetBN",
                                   "batch_norm_backward", "BatchNormFunction"]),
    "05-norm-layers": ("norm_layers", ["layer_norm", "instance_norm", "group_norm", "equivalent_norm",
                                     "layer_norm_backward"]),
    "06-transformer-norms": ("transformer_norms", ["rms_norm", "RMSNorm", "rms_norm_backward", "dyt",
                                                 "ResidualBlock"]),
    "07-beyond-penalties": ("beyond_penalties", ["label_smoothed_cross_entropy", "mixup", "EarlyStopping",
                                                 "ema_update", "update_bn", "expected_calibration_error"]),
}

ASSIGNMENTS = assignments()
SOURCES = [nb for a in ASSIGNMENTS for nb in source_notebooks(a)]


def _id(path):
    return f"{path.parent.name}/{path.name}"


def test_every_assignment_is_in_the_contract():
    assert ASSIGNMENTS, "no assignment in solutions/"
    assert set(ASSIGNMENTS) <= set(CONTRACT)
    assert "03-dropout" in ASSIGNMENTS


@pytest.fixture(scope="module")
def fresh_release(tmp_path_factory):
    dest = tmp_path_factory.mktemp("release")
    generate(dest)
    return dest


def test_course_is_exactly_a_fresh_release(fresh_release):
    generated = sorted(p.relative_to(fresh_release) for p in fresh_release.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(COURSE) for p in COURSE.rglob("*")
                       if p.is_file() and ".ipynb_checkpoints" not in p.parts)
    assert committed == generated, "course/ has other files than the release: run `make release`"
    for rel in generated:
        assert (COURSE / rel).read_text() == (fresh_release / rel).read_text(), (
            f"course/{rel} differs from a fresh `make release`: never edit course/ by hand")


@pytest.mark.parametrize("source", SOURCES, ids=_id)
def test_no_solution_or_hidden_test_leaks_into_course(source):
    released = (COURSE / source.parent.name / source.name).read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in released
    region = re.compile(r"### BEGIN (?:SOLUTION|HIDDEN TESTS)\n(.*?)### END (?:SOLUTION|HIDDEN TESTS)", re.S)
    cells = notebooks.load(source).cells
    # Lines the notebook shows anyway, outside any solution or hidden region, are not leaks.
    public = "\n".join(region.sub("", c.source) for c in cells)
    for cell in cells:
        for body in region.findall(cell.source):
            for line in body.splitlines():
                line = line.strip()
                if len(line) > 12 and not line.startswith("#") and line not in public and line not in _STUB_LINES:
                    assert json.dumps(line)[1:-1] not in released, f"leaked into course/: {line!r}"


_STUB_LINES = {"raise NotImplementedError()"}


@pytest.mark.parametrize("path", SOURCES + [COURSE / s.parent.name / s.name for s in SOURCES], ids=lambda p: f"{p.parts[-3]}/{_id(p)}")
def test_stored_without_outputs(path):
    for cell in notebooks.load(path).cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path}: outputs stored"


@pytest.mark.parametrize("source", SOURCES, ids=_id)
def test_exercises_follow_the_contract(source):
    notebook_name, names = CONTRACT[source.parent.name]
    assert source.stem == notebook_name
    nb = notebooks.load(source)
    exercises = notebooks.exercises(nb)
    for name in names:
        assert name in exercises, f"{name} (from the contract) has no solution cell"
    ids = [notebooks.grade_id(c) for c in nb.cells]
    assert None not in ids, "every cell carries nbgrader metadata with a grade_id"
    assert len(ids) == len(set(ids)), "duplicate grade_id"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert ids.count("setup") == 1


@pytest.mark.parametrize("source", SOURCES, ids=_id)
def test_test_cells_are_well_formed(source):
    nb = notebooks.load(source)
    names = notebooks.exercises(nb)
    visible = {name: 0 for name in names}
    previous = None
    for cell in nb.cells:
        gid = notebooks.grade_id(cell)
        meta = notebooks.nbgrader_meta(cell)
        if notebooks.is_solution(cell):
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source, gid
            assert not meta.get("grade"), f"{gid}: solution cells are graded by their tests"
        if notebooks.is_test(cell):
            exercise = notebooks.exercise_of(gid, names)
            assert exercise is not None, f"{gid} does not name an exercise (test_<exercise>[_<what>])"
            assert meta.get("locked") and meta.get("points", 0) > 0, gid
            # nbgrader re-inserts a deleted test cell after the cell before it, which
            # must therefore be a solution or test cell.
            assert previous is not None and (notebooks.is_solution(previous) or notebooks.is_test(previous)), gid
            shown = re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", "", cell.source, flags=re.S)
            if re.search(r"\bcheck_\w+\(", shown):
                visible[exercise] += 1
            _lint_test_cell(gid, notebooks.strip_markers(cell.source))
        previous = cell
    assert all(visible.values()), f"exercises without a visible test: {[k for k, v in visible.items() if not v]}"


def _lint_test_cell(gid: str, source: str) -> None:
    """nbgrader reads a test cell's last expression as a partial score and zeroes it on any
    stderr output: a test cell imports checks and calls them, and nothing else (its
    description is a comment, so that a cell whose checks are all hidden is only a
    comment in the release, not a stray string output)."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("grader.checks", "grader.hidden")):
            continue
        assert isinstance(node, ast.Expr) and isinstance(node.value, ast.Call), (
            f"{gid}: a test cell holds check calls only, found {ast.dump(node)[:80]}")
        func = node.value.func
        assert isinstance(func, ast.Name) and func.id.startswith("check_"), f"{gid}: calls {ast.dump(func)}"


@pytest.mark.parametrize("source", SOURCES, ids=_id)
def test_released_test_cells_hold_only_check_calls(source):
    released = notebooks.load(COURSE / source.parent.name / source.name)
    for cell in released.cells:
        if notebooks.is_test(cell):
            assert cell.source.lstrip().startswith("#"), f"{notebooks.grade_id(cell)}: starts with a comment saying what it tests"
            _lint_test_cell(notebooks.grade_id(cell), cell.source)


@pytest.mark.parametrize("source", SOURCES, ids=_id)
def test_header_points_equal_metadata(source):
    nb = notebooks.load(source)
    header = nb.cells[0].source
    stated = {m.group(1): float(m.group(2)) for m in re.finditer(r"^\|\s*`(\w+)`\s*\|.*\|\s*(\d+(?:\.\d+)?)\s*\|\s*$", header, re.M)}
    total = re.search(r"\*\*total\*\*.*\*\*(\d+(?:\.\d+)?)\*\*", header)
    points = notebooks.points(nb)
    assert stated == points, f"header says {stated}, metadata says {points}"
    assert total and float(total.group(1)) == sum(points.values())


def test_every_check_is_decorated():
    import importlib
    import inspect
    import pkgutil

    import grader.checks
    import grader.hidden

    found = 0
    # modules and packages (grader/checks/batchnorm/ is one), their modules included
    modules = [info.name for package in (grader.checks, grader.hidden)
               for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
               if not info.name.rpartition(".")[2].startswith("_")]
    for module_name in modules:
        module = importlib.import_module(module_name)
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("check_") and fn.__module__ == module.__name__:
                assert getattr(fn, "__grader_check__", False), f"{module_name}.{name} lacks @check"
                found += 1
    assert found >= 9
    assert "grader.checks.batchnorm.layer" in modules


def test_no_checks_module_is_much_over_600_lines():
    """A checks module holds one assignment's checks, or one exercise group's when the
    assignment's are split into a package (grader/checks/batchnorm/): short enough to read."""
    too_long = {}
    for folder in ("checks", "hidden", "mistakes"):
        for path in sorted((ROOT / "grader" / folder).rglob("*.py")):
            n = len(path.read_text().splitlines())
            if n > 700:  # "about 600": slack for a module like norm_layers.py (664), not for another exercise
                too_long[str(path.relative_to(ROOT))] = n
    assert not too_long, f"split these by exercise (as grader/checks/batchnorm/): {too_long}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_assignment_has_a_mistake_catalogue_with_its_test(assignment):
    from grader.mistakes import catalogue, demo_mistakes

    nb = notebooks.load(source_notebooks(assignment)[0])
    exercises = notebooks.exercises(nb)
    mistakes = catalogue(assignment)
    assert mistakes, "a catalogue of typical mistakes proves the checks"
    assert {m.exercise for m in mistakes.values()} <= set(exercises)
    assert set(CONTRACT[assignment][1]) <= {m.exercise for m in mistakes.values()}, "every contract exercise has a mistake"
    demo = demo_mistakes(assignment)
    assert 1 <= len(demo) <= 4 and len({m.exercise for m in demo.values()}) == len(demo)
    topic = CONTRACT[assignment][0]
    assert (ROOT / "tests" / f"test_{topic}_mistakes.py").exists()


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.parent.name)
def test_questions_read_runs_that_no_answer_overwrites(source):
    """The judge passes a question's check the values of the run as the locked cell left them
    (grader.judge.run_specs): such a name must come from runs only, never from an answer
    cell, or the judge would hide the student's own value; and each question has its run."""
    from grader.judge import run_specs

    nb = notebooks.load(source)
    tests = {notebooks.grade_id(c): (notebooks.strip_markers(c.source), 1.0) for c in nb.cells if notebooks.is_test(c)}
    locked = {notebooks.grade_id(c): c.source for c in nb.cells if c.cell_type == "code" and not notebooks.is_test(c)
              and not notebooks.is_solution(c) and notebooks.nbgrader_meta(c).get("locked")}
    kept = {name for spec in run_specs(tests, locked).values() for name in spec["names"]}
    answered = set().union(*(notebooks.assigned_names(ast.parse(notebooks.strip_markers(c.source)))
                             for c in nb.cells if notebooks.is_solution(c)))
    assert not kept & answered
    assert set(notebooks.question_runs(nb)) and kept  # every assignment asks about its own run
