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


def test_the_process_limit_counts_per_user_namespace_on_current_kernels():
    # Linux 5.14 counts RLIMIT_NPROC per (user namespace, uid): the limit then holds for an
    # unprivileged instructor too, whose sandboxes each have a user namespace of their own
    assert sandbox_module.nproc_per_user_namespace("6.8.0-45-generic")
    assert sandbox_module.nproc_per_user_namespace("5.14.0")
    assert not sandbox_module.nproc_per_user_namespace("5.10.0-28-amd64")
    assert not sandbox_module.nproc_per_user_namespace("4.19.0")
    box = Sandbox(max_processes=100)
    assert box.limits(root=True)["RLIMIT_NPROC"] == 100 + sandbox_module.NPROC_HEADROOM
    assert ("RLIMIT_NPROC" in box.limits(root=False)) == sandbox_module.nproc_per_user_namespace()


def test_the_watchdog_kills_a_process_tree_that_reaches_the_limit():
    import subprocess
    import sys
    import time

    # a stand-in for bubblewrap: a parent whose only child (the "namespace init") forks on
    spawner = ("import os, time\nfor _ in range(200):\n    if os.fork() == 0:\n        time.sleep(60)\n"
               "        os._exit(0)\n    time.sleep(0.005)\ntime.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {spawner!r}])"],
                              start_new_session=True)
    try:
        dog = sandbox_module.Watchdog(parent.pid, limit=40, interval=0.02)
        deadline = time.monotonic() + 30
        while dog.reason is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert dog.reason and "max_processes = 40" in dog.reason
        assert 40 <= dog.peak < 100
        parent.wait(timeout=10)  # its child, the init, was killed: the parent ends
    finally:
        import os
        import signal

        try:
            os.killpg(parent.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        parent.wait()


def test_a_fork_bomb_in_a_sandboxed_kernel_is_stopped_and_named(tmp_path):
    import time

    from grader.kernel import Kernel

    box = Sandbox(max_processes=64)
    try:
        box.check()
    except SandboxUnavailable as exc:
        pytest.skip(f"no sandbox can start here: {exc}")
    tmp_path.chmod(0o777)
    kernel = Kernel(box, tmp_path)
    kernel.start()
    try:
        began = time.monotonic()
        out = kernel.execute("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n"
                             "        pass\n", timeout=60)
        assert out.status == "died", out
        assert time.monotonic() - began < 30
        assert "max_processes = 64" in kernel.death_reason
    finally:
        kernel.kill()
