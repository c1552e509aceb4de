"""Where no sandbox can start, autograding stops and names the cause; --no-sandbox is the
explicit choice for trusted submissions and warns on every run. The confinement's command
binds what a kernel needs and nothing of the checkout."""
from __future__ import annotations

import pytest

from grader import sandbox as sandbox_module
from grader.autograde import NO_SANDBOX_WARNING, sandbox_options
from grader.paths import ROOT
from grader.sandbox import Sandbox, SandboxUnavailable


def test_no_bubblewrap_stops_autograding_with_the_cause(monkeypatch):
    monkeypatch.setattr(sandbox_module, "bwrap_path", lambda: None)
    sandbox_module._probe.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable, match="bubblewrap is not installed"):
            Sandbox().check()
        with pytest.raises(SystemExit, match="(?s)Cannot autograde: .*bubblewrap.*--no-sandbox"):
            sandbox_options(True)
    finally:
        sandbox_module._probe.cache_clear()


def test_no_sandbox_is_explicit_and_warns():
    assert sandbox_options(False) == ["--Sandbox.enabled=False"]
    assert "WITHOUT a sandbox" in NO_SANDBOX_WARNING and "trusted" in NO_SANDBOX_WARNING


def test_the_sandbox_sees_the_environment_and_helpers_but_not_the_checkout(tmp_path):
    cmd = Sandbox().command(["-c", "pass"], str(tmp_path), str(tmp_path), 4242)
    binds = [cmd[i + 1] for i, arg in enumerate(cmd) if arg in ("--ro-bind", "--bind")]
    assert str(ROOT / "regnorm") in binds and str(ROOT / "grader" / "wire") in binds
    assert str(ROOT) not in binds and str(ROOT / "grader") not in binds
    assert not any(b.startswith(str(ROOT / "solutions")) or b.startswith(str(ROOT / "grader" / "checks"))
                   for b in binds)
    assert "--unshare-net" in cmd and "--unshare-pid" in cmd and "--die-with-parent" in cmd
    writable = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--bind"]
    assert writable == [str(tmp_path), str(tmp_path)]
