"""A real course hub for the tests: Unix users made for the test, `deploy/hub/install.sh`,
JupyterHub with PAM and the local spawner on loopback, and clients that log in as those
users. Everything is removed afterwards, even when a test fails: the hub's processes, every
process of the test's users, the users and their homes, the temporary folders, and the
permissions the test opened.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from grader.paths import ROOT

INSTALL = ROOT / "deploy" / "hub" / "install.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def open_to_others(*paths: Path):
    """Let other users traverse the folders above ``paths`` (o+x) for the test's duration:
    the course checkout and this Python may live under a private folder (a `mktemp -d`
    clone, pyenv under /root). Modes are put back afterwards."""
    changed: dict[Path, int] = {}
    try:
        for path in paths:
            for d in [Path(path), *Path(path).parents]:
                mode = d.stat().st_mode
                if d.is_dir() and not mode & stat.S_IXOTH and d not in changed:
                    changed[d] = stat.S_IMODE(mode)
                    os.chmod(d, stat.S_IMODE(mode) | stat.S_IXOTH)
        yield
    finally:
        for d, mode in changed.items():
            with contextlib.suppress(OSError):
                os.chmod(d, mode)


class Users:
    """Unix users with names no one else has (``rn`` + random hex + a role letter) and PAM
    passwords; ``remove`` kills their processes and deletes them with their homes."""

    def __init__(self, roles: list[str]) -> None:
        self.tag = "rn" + secrets.token_hex(4)
        self.names = {role: f"{self.tag}{role}" for role in roles}
        self.password = secrets.token_urlsafe(12)
        self.made: list[str] = []

    def create(self) -> None:
        for name in self.names.values():
            subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], check=True)
            self.made.append(name)
            subprocess.run(["chpasswd"], input=f"{name}:{self.password}\n", text=True, check=True)

    def remove(self) -> None:
        for name in self.made:
            subprocess.run(["pkill", "-KILL", "-u", name], check=False)
        time.sleep(0.5)
        for name in self.made:
            subprocess.run(["pkill", "-KILL", "-u", name], check=False)
            subprocess.run(["userdel", "-r", "-f", name], check=False, capture_output=True)

    def home(self, role: str) -> Path:
        import pwd

        return Path(pwd.getpwnam(self.names[role]).pw_dir)


class Hub:
    """install.sh into temporary folders, then JupyterHub on free loopback ports."""

    def __init__(self, users: Users, instructor: str, students: list[str]) -> None:
        self.users = users
        self.tmp = Path(tempfile.mkdtemp(prefix="regnorm-hub-"))
        os.chmod(self.tmp, 0o755)
        self.exchange = self.tmp / "exchange"
        self.config = self.tmp / "etc"
        self.state = self.tmp / "state"
        self.log = self.tmp / "hub.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.instructor = users.names[instructor]
        self.students = [users.names[s] for s in students]
        self.proc: subprocess.Popen | None = None

    def install(self) -> subprocess.CompletedProcess:
        args = [str(INSTALL), "--instructor", self.instructor, "--students", ",".join(self.students),
                "--exchange", str(self.exchange), "--config-dir", str(self.config),
                "--state-dir", str(self.state), "--bind-url", self.url,
                "--no-system-packages", "--no-systemd"]
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        return subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)

    def start(self) -> None:
        settings = json.loads((self.config / "settings.json").read_text())
        settings.update(hub_bind_url=f"http://127.0.0.1:{free_port()}",
                        proxy_api_url=f"http://127.0.0.1:{free_port()}")
        (self.config / "settings.json").write_text(json.dumps(settings))
        env = {**os.environ, "REGNORM_HUB_SETTINGS": str(self.config / "settings.json")}
        env.pop("JUPYTER_CONFIG_PATH", None)
        self.proc = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "jupyterhub"),
             "-f", str(ROOT / "deploy" / "hub" / "jupyterhub_config.py")],
            cwd=self.state, env=env, stdout=open(self.log, "w"), stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the hub exited:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/hub/api", timeout=2).ok:
                    return
            time.sleep(0.3)
        raise RuntimeError(f"the hub did not answer in 60 s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        # The proxy runs in the hub's session; servers as their users (Users.remove).
        with contextlib.suppress(ProcessLookupError, TypeError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def cleanup(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def login(self, name: str, password: str) -> "Client":
        return Client(self, name, password)


class Client:
    """A user logged in through the hub's login form (PAM), with an API token for the hub's
    REST API and their own server's."""

    def __init__(self, hub: Hub, name: str, password: str) -> None:
        self.hub, self.name = hub, name
        s = requests.Session()
        s.get(f"{hub.url}/hub/login", timeout=30)
        r = s.post(f"{hub.url}/hub/login", data={"username": name, "password": password,
                                                  "_xsrf": s.cookies.get("_xsrf")},
                   allow_redirects=False, timeout=60)
        if r.status_code != 302:
            raise RuntimeError(f"{name} could not log in: {r.status_code} {r.text[:300]}")
        r = s.post(f"{hub.url}/hub/api/users/{name}/tokens", json={"note": "test", "expires_in": 3600},
                   headers={"X-XSRFToken": s.cookies.get("_xsrf", path="/hub/")}, timeout=30)
        r.raise_for_status()
        self.token = r.json()["token"]
        self.headers = {"Authorization": f"token {self.token}"}

    def hub_api(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, f"{self.hub.url}/hub/api{path}", headers=self.headers,
                                timeout=kwargs.pop("timeout", 60), **kwargs)

    def start_server(self, timeout: float = 180) -> float:
        t0 = time.time()
        r = self.hub_api("POST", f"/users/{self.name}/server")
        if r.status_code not in (201, 202, 400):
            raise RuntimeError(f"spawn of {self.name}: {r.status_code} {r.text[:300]}")
        while time.time() - t0 < timeout:
            model = self.hub_api("GET", f"/users/{self.name}").json()
            server = model.get("servers", {}).get("")
            if server and server.get("ready"):
                return time.time() - t0
            time.sleep(0.5)
        raise RuntimeError(f"{self.name}'s server not ready in {timeout} s")

    def server(self, method: str, path: str, user: str | None = None, **kwargs) -> requests.Response:
        """A request to ``user``'s server (default: one's own) at ``/user/USER/PATH``."""
        url = f"{self.hub.url}/user/{user or self.name}/{path.lstrip('/')}"
        return requests.request(method, url, headers=self.headers, allow_redirects=False,
                                timeout=kwargs.pop("timeout", 600), **kwargs)

    def put_notebook(self, path: str, nb) -> None:
        r = self.server("PUT", f"api/contents/{path}", json={"type": "notebook", "format": "json",
                                                             "content": nb})
        r.raise_for_status()

    def run_as(self, *cmd: str, cwd: str | None = None, env: dict | None = None,
               timeout: float = 900) -> subprocess.CompletedProcess:
        """A command as this user, in the environment the hub gives their server (as in a
        terminal of their lab)."""
        import importlib.util

        spec = importlib.util.spec_from_file_location("regnorm_hub", ROOT / "deploy" / "hub" / "regnorm_hub.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        settings = module.load_settings(str(self.hub.config / "settings.json"))
        import pwd

        home = pwd.getpwnam(self.name).pw_dir
        user_env = {"HOME": home, "USER": self.name, "LOGNAME": self.name, "LANG": "C.UTF-8",
                    **module.user_environment(settings, self.name), "MPLBACKEND": "Agg", **(env or {})}
        return subprocess.run(["runuser", "-u", self.name, "--", "env", "-i",
                               *[f"{k}={v}" for k, v in user_env.items()], *cmd],
                              cwd=cwd or home, capture_output=True, text=True, timeout=timeout)
