"""Where no sandbox can start, autograding stops and names the cause; --no-sandbox is the
explicit choice for trusted submissions and warns on every run. The confinement's command
binds what a kernel needs and nothing of the checkout."""
from __future__ import annotations

import os
from pathlib import Path

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


def _sandboxed_kernel(tmp_path, box: Sandbox):
    """A started kernel in ``box`` with ``tmp_path`` as its scratch folder (skips where no
    sandbox can start); the caller kills it."""
    from grader.kernel import Kernel

    try:
        box.check()
    except SandboxUnavailable as exc:
        pytest.skip(f"no sandbox can start here: {exc}")
    tmp_path.chmod(0o777)
    kernel = Kernel(box, tmp_path)
    kernel.start()
    return kernel


def test_a_fork_bomb_in_a_sandboxed_kernel_is_stopped_and_named(tmp_path):
    import time

    kernel = _sandboxed_kernel(tmp_path, Sandbox(max_processes=64))
    try:
        began = time.monotonic()
        out = kernel.execute("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n"
                             "        pass\n", timeout=60)
        assert out.status == "died", out
        assert time.monotonic() - began < 30
        assert "max_processes = 64" in kernel.death_reason
    finally:
        kernel.kill()


# ---------------------------------------------------------------------- why no sandbox starts

UBUNTU_2404 = "bwrap: setting up uid map: Permission denied\n"
NO_USERNS = ("bwrap: Creating new namespace failed: nesting depth or /proc/sys/user/max_*_namespaces "
             "exceeded (ENOSPC)\n")
DEBIAN_OLD = ("bwrap: No permissions to creating new namespace, likely because the kernel does not allow "
              "non-privileged user namespaces. On e.g. debian this can be enabled with "
              "'sysctl kernel.unprivileged_userns_clone=1'.\n")
SECCOMP = "bwrap: Creating new namespace failed: Operation not permitted\n"


def _fake_proc(tmp_path, **values):
    for name, rel in sandbox_module.SYSCTLS.items():
        key = name.split(".")[1]
        if key in values:
            path = tmp_path / "sys" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{values[key]}\n")
    return tmp_path


def test_the_sysctls_are_read_from_proc(tmp_path):
    proc = _fake_proc(tmp_path, max_user_namespaces=0, apparmor_restrict_unprivileged_userns=1)
    assert sandbox_module.read_sysctls(proc) == {
        "user.max_user_namespaces": "0", "kernel.unprivileged_userns_clone": None,
        "kernel.apparmor_restrict_unprivileged_userns": "1"}


def test_ubuntu_apparmor_restriction_names_the_profile_and_the_sysctl(tmp_path):
    sysctls = sandbox_module.read_sysctls(_fake_proc(tmp_path, max_user_namespaces=63000,
                                                     apparmor_restrict_unprivileged_userns=1))
    msg = sandbox_module.diagnose(UBUNTU_2404, sysctls, None, "/opt/regnorm/bwrap")
    assert "setting up uid map: Permission denied" in msg
    assert "kernel.apparmor_restrict_unprivileged_userns = 1" in msg
    assert f"{ROOT / 'deploy/hub/apparmor/install-bwrap-profile'} /opt/regnorm/bwrap" in msg
    assert "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0" in msg
    assert "/etc/sysctl.d/" in msg


def test_user_namespaces_switched_off_name_their_sysctl(tmp_path):
    sysctls = sandbox_module.read_sysctls(_fake_proc(tmp_path, max_user_namespaces=0))
    msg = sandbox_module.diagnose(NO_USERNS, sysctls, None, "/b/bwrap")
    assert "user.max_user_namespaces = 0" in msg and "sysctl -w user.max_user_namespaces=15000" in msg
    assert "AppArmor" not in msg


def test_old_debian_kernels_name_unprivileged_userns_clone(tmp_path):
    sysctls = sandbox_module.read_sysctls(_fake_proc(tmp_path, max_user_namespaces=63000,
                                                     unprivileged_userns_clone=0))
    msg = sandbox_module.diagnose(DEBIAN_OLD, sysctls, None, "/b/bwrap")
    assert "sysctl -w kernel.unprivileged_userns_clone=1" in msg


def test_a_container_says_where_grading_must_run(tmp_path):
    sysctls = sandbox_module.read_sysctls(_fake_proc(tmp_path, max_user_namespaces=63000))
    msg = sandbox_module.diagnose(SECCOMP, sysctls, "Kubernetes", "/b/bwrap")
    assert "Kubernetes" in msg and "VM" in msg and "Dask workers" in msg and "--no-sandbox" in msg
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "cgroup").write_text("0::/kubepods.slice/kubepods-besteffort.slice/cri-containerd-1.scope\n")
    assert sandbox_module.container(tmp_path, tmp_path) == "Kubernetes"
    (tmp_path / "1" / "cgroup").write_text("0::/\n")
    (tmp_path / ".dockerenv").touch()
    assert sandbox_module.container(tmp_path, tmp_path) in ("Docker", "Kubernetes")  # the env may say Kubernetes


def test_other_failures_keep_bwraps_words_without_a_wrong_cause():
    msg = sandbox_module.diagnose("bwrap: execvp python: No such file or directory\n",
                                  {"kernel.apparmor_restrict_unprivileged_userns": "1"}, None, "/b/bwrap")
    assert "No such file or directory" in msg and "Cause" not in msg


def test_autograde_stops_with_the_diagnosis(monkeypatch):
    monkeypatch.setattr(sandbox_module, "_probe", lambda tmp_size: sandbox_module.diagnose(
        UBUNTU_2404, {"kernel.apparmor_restrict_unprivileged_userns": "1"}, None, "/b/bwrap"))
    with pytest.raises(SystemExit, match="(?s)Cannot autograde: .*AppArmor.*install-bwrap-profile.*--no-sandbox"):
        sandbox_options(True)


def test_the_apparmor_profile_grants_userns_to_the_given_bwrap_only(tmp_path):
    import shutil
    import subprocess

    script = ROOT / "deploy" / "hub" / "apparmor" / "install-bwrap-profile"
    assert os.access(script, os.X_OK)
    fake = tmp_path / "env" / "bwrap"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    out = subprocess.run([str(script), "--print", str(fake)], capture_output=True, text=True, check=True).stdout
    lines = [line.strip() for line in out.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert f"profile bwrap-regnorm {fake} flags=(unconfined) {{" in lines
    assert "userns," in lines
    assert (ROOT / "deploy" / "hub" / "apparmor" / "bwrap-regnorm").read_text().count("userns,") == 1
    parser = shutil.which("apparmor_parser")
    if parser and Path("/etc/apparmor.d/abi/4.0").exists():  # AppArmor 4 (Ubuntu 24.04): parse it
        profile = tmp_path / "bwrap-regnorm"
        profile.write_text(out)
        subprocess.run([parser, "--skip-kernel-load", "--skip-cache", str(profile)], check=True)


def test_processes_a_cell_leaves_behind_are_counted(tmp_path):
    # the judge ends a kernel whose timed-out cell left such processes: an interrupt reaches
    # the kernel, not its forked children
    kernel = _sandboxed_kernel(tmp_path, Sandbox())
    try:
        assert kernel.stray_processes() == 0
        out = kernel.execute("import os, time\nfor _ in range(3):\n    if os.fork() == 0:\n"
                             "        time.sleep(600)\n        os._exit(0)\n", timeout=30)
        assert out.status == "ok", out
        assert kernel.stray_processes() == 3
    finally:
        kernel.kill()
    assert not kernel.alive()
