"""What the browser tests share: a real `jupyter lab` on a free loopback port, Debian's
chromium driven by Playwright (no browser download), screenshots as artifacts, and a
record of every request that leaves the machine.

Screenshots go to ``artifacts/browser/`` at the repository root (git ignores it), or to
``$BROWSER_ARTIFACTS``. The tests skip, saying why, when chromium or Playwright is
missing; `.ci/run` installs chromium so CI always runs them.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from grader.paths import ROOT, subprocess_env

ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS", ROOT / "artifacts" / "browser"))
VIEWPORT = {"width": 1280, "height": 900}
# A closed network: no component updates, no sync, no background requests.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def require_browser() -> str:
    """The chromium executable, or skip the module with the reason and the fix."""
    path = chromium_path()
    if path is None:
        pytest.skip("browser tests need Debian's chromium (`apt-get install chromium`, as .ci/run "
                    "does) or $CHROMIUM pointing at a Chromium binary", allow_module_level=True)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("browser tests need the Python package playwright (pip install -e '.[dev]')",
                    allow_module_level=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def jupyter_lab(config: str, root_dir: Path, cwd: Path, log: Path):
    """Start `jupyter lab` as `make lab` (config "student") or `make instructor` (config
    "instructor") would, on a free loopback port, without a token; yield its base URL."""
    port = free_port()
    env = subprocess_env()
    env["JUPYTER_CONFIG_PATH"] = str(ROOT / "jupyter" / config)
    env["JUPYTER_PATH"] = str(ROOT / "jupyter" / "data")
    env.pop("MPLBACKEND", None)  # the kernel shows figures inline, as in `make lab`
    # A fresh JupyterLab: no layout or settings of earlier runs or of the user's own labs.
    home = Path(tempfile.mkdtemp(prefix=f"lab-{config}-"))
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(home / "workspaces")
    env["JUPYTERLAB_SETTINGS_DIR"] = str(home / "user-settings")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        lab = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "jupyter"), "lab", "--no-browser",
             f"--port={port}", "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=",
             "--ServerApp.password=",
             f"--ServerApp.root_dir={root_dir}", *(["--allow-root"] if os.geteuid() == 0 else [])],
            cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status", timeout=5)
                break
            except OSError:
                if time.time() > deadline or lab.poll() is not None:
                    raise RuntimeError(f"jupyter lab did not start; see {log}")
                time.sleep(0.5)
        yield base
    finally:
        lab.terminate()
        try:
            lab.wait(timeout=30)
        except subprocess.TimeoutExpired:
            lab.kill()
            lab.wait()
        shutil.rmtree(home, ignore_errors=True)


def get_json(url: str):
    return json.load(urllib.request.urlopen(url, timeout=10))


class Browser:
    """One chromium for a test module; pages record requests leaving loopback."""

    def __init__(self, executable: str) -> None:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        self.outside: list[str] = []  # requests to anything but this machine

    def page(self):
        context = self.browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(60_000)

        def record(request):
            url = request.url
            host = urllib.parse.urlparse(url).hostname
            if url.startswith(("data:", "blob:", "about:", "file:")) or host in ("127.0.0.1", "localhost"):
                return
            self.outside.append(url)

        context.on("request", record)
        context.route(lambda url: not url.startswith(("http://127.0.0.1", "file:", "data:", "blob:", "about:")),
                      lambda route: route.abort())  # nothing leaves the machine, whatever asks
        return page

    def close(self) -> None:
        self.browser.close()
        self._pw.stop()


def shot(page, name: str) -> Path:
    """Save a screenshot of the viewport as ``ARTIFACTS/<name>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def error_banners(page) -> list[str]:
    """Texts of JupyterLab's error dialogs, toasts and nbgrader error messages on the page."""
    texts = page.locator(".jp-Dialog, .Toastify__toast--error, .jp-toast-error").all_inner_texts()
    return [t for t in texts if t.strip()]
