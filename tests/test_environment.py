"""Set-up files agree: pyproject.toml and environment.yml declare the same dependencies, the
README states the same torch range, and the torch the Makefile installs (the CPU build on this
machine's disk) satisfies the range."""
import re
import tomllib

from packaging.requirements import Requirement
from packaging.version import Version

from grader.paths import ROOT


def _pyproject():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = data["project"]["dependencies"] + data["project"]["optional-dependencies"]["dev"]
    return {Requirement(d).name.lower(): str(Requirement(d).specifier) for d in deps}


def _environment_yml():
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    deps = {}
    for line in lines[start + 1:]:
        m = re.match(r"^\s+- (.+)$", line)
        if not m:
            break
        spec = m.group(1).strip()
        if spec.startswith("-e"):
            continue
        req = Requirement(spec)
        deps[req.name.lower()] = str(req.specifier)
    return deps


def test_pyproject_and_environment_yml_declare_the_same_dependencies():
    assert _pyproject() == _environment_yml()


def test_torch_range_admits_the_pinned_cpu_build_and_not_an_unknown_future():
    spec = Requirement(f"torch{_pyproject()['torch']}").specifier
    pinned = re.search(r"^TORCH\s*\?=\s*torch==(\S+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert Version(pinned) in spec
    assert Version("2.13.0") in spec and Version("3.0") not in spec
    # torch.nn.RMSNorm and F.rms_norm (assignment 06) first appear in 2.4
    assert Version("2.4.0") in spec and Version("2.3.1") not in spec


def test_readme_states_the_torch_range_of_pyproject():
    readme = (ROOT / "README.md").read_text()
    stated = re.search(r"`pyproject\.toml` allows `(torch[^`]+)`", readme)
    assert stated, "README.md no longer says which torch pyproject.toml allows"
    assert str(Requirement(stated.group(1)).specifier) == _pyproject()["torch"]


def test_makefile_targets_of_the_readme_exist():
    makefile = (ROOT / "Makefile").read_text()
    readme = (ROOT / "README.md").read_text()
    for target in ("lab", "instructor", "demo", "report", "test", "release", "bench"):
        assert re.search(rf"^{target}:", makefile, re.M), target
        assert f"make {target}" in readme, target
