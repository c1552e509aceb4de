"""The course hub's settings, shared by `jupyterhub_config.py` (a hub of its own) and
`tljh-regnorm.py` (a snippet for The Littlest JupyterHub).

Everything a class needs comes from one JSON file, written by `install.sh` (default
`/etc/regnorm-hub/settings.json`, or the path in REGNORM_HUB_SETTINGS):

    {"course_id": "regnorm", "prefix": "/opt/regnorm", "exchange": "/srv/nbgrader/exchange",
     "instructors": ["ada"], "students": ["bo", "cy"], "course_dir": "regnorm",
     "bind_url": "http://127.0.0.1:8000", "state_dir": "/var/lib/regnorm-hub"}

`prefix` is the course checkout with its environment (`.venv/`, made by `make setup`);
`course_dir` is the instructor's own clone of the course, relative to their home. Student
ids are the hub's user names (Unix user names with the local spawner).
"""
from __future__ import annotations

import json
import os
import pwd
import shutil

DEFAULTS = {
    "course_id": "regnorm",
    "prefix": "/opt/regnorm",
    "exchange": "/srv/nbgrader/exchange",
    "instructors": [],
    "students": [],
    "course_dir": "regnorm",
    "bind_url": "http://127.0.0.1:8000",
    "state_dir": "/var/lib/regnorm-hub",
    "authenticator": "pam",
    "hub_bind_url": None,  # the hub's internal API (JupyterHub's default: 127.0.0.1:8081)
    "proxy_api_url": None,  # the proxy's API (default: 127.0.0.1:8001)
}
SETTINGS = "/etc/regnorm-hub/settings.json"


def load_settings(path: str | None = None) -> dict:
    path = path or os.environ.get("REGNORM_HUB_SETTINGS") or SETTINGS
    with open(path) as f:
        given = json.load(f)
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"{path}: unknown settings {', '.join(unknown)} "
                         f"(known: {', '.join(sorted(DEFAULTS))})")
    return {**DEFAULTS, **given}


def _home(name: str) -> str | None:
    for candidate in (name, f"jupyter-{name}"):  # the local spawner; TLJH's systemd spawner
        try:
            return pwd.getpwnam(candidate).pw_dir
        except KeyError:
            continue
    return None


def user_environment(settings: dict, name: str) -> dict:
    """The environment of `name`'s server: the course's Python first on PATH, the Jupyter
    settings of their role (the student lab with the Assignments tab, or the instructor lab
    with the formgrader), the course id and the exchange."""
    prefix = settings["prefix"]
    role = "instructor" if name in settings["instructors"] else "student"
    here = os.path.join(prefix, "deploy", "hub", "jupyter", role)
    env = {
        "PATH": os.pathsep.join([os.path.join(prefix, ".venv", "bin"), "/usr/local/bin", "/usr/bin", "/bin"]),
        "JUPYTER_CONFIG_PATH": os.pathsep.join([here, os.path.join(prefix, "jupyter", role)]),
        "JUPYTER_PATH": os.path.join(prefix, "jupyter", "data"),
        "REGNORM_COURSE_ID": settings["course_id"],
        "REGNORM_EXCHANGE": settings["exchange"],
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    if role == "instructor":
        env["REGNORM_COURSE_DIR"] = os.path.join("~", settings["course_dir"])
    return env


def pre_spawn(settings: dict):
    """Before a server starts: its environment, and a home only its owner can enter (useradd
    makes homes world-readable on Debian unless HOME_MODE says otherwise)."""

    def hook(spawner):
        name = spawner.user.name
        spawner.environment.update(user_environment(settings, name))
        home = _home(name)
        if home and os.path.isdir(home):
            os.chmod(home, 0o700)

    return hook


def configure(c, settings: dict, tljh: bool = False) -> None:
    """Apply the course's settings to a JupyterHub config `c`. With `tljh`, leave what The
    Littlest JupyterHub manages (authenticator, spawner, address, state) alone."""
    prefix = settings["prefix"]
    users = set(settings["instructors"]) | set(settings["students"])
    c.Spawner.pre_spawn_hook = pre_spawn(settings)
    c.Spawner.default_url = "/lab"
    c.Spawner.notebook_dir = "~"
    c.Spawner.cmd = [os.path.join(prefix, ".venv", "bin", "jupyterhub-singleuser")]
    # A server with torch and a kernel starts in seconds, but a loaded machine needs more.
    c.Spawner.start_timeout = 180
    c.Spawner.http_timeout = 180
    c.JupyterHub.load_groups = {
        "instructors": {"users": sorted(settings["instructors"])},
        "students": {"users": sorted(settings["students"])},
    }
    if users:
        c.Authenticator.allowed_users = users
    if tljh:
        return
    state = settings["state_dir"]
    os.makedirs(state, mode=0o700, exist_ok=True)
    c.JupyterHub.bind_url = settings["bind_url"]
    if settings["hub_bind_url"]:
        c.JupyterHub.hub_bind_url = settings["hub_bind_url"]
    if settings["proxy_api_url"]:
        c.ConfigurableHTTPProxy.api_url = settings["proxy_api_url"]
    c.JupyterHub.db_url = f"sqlite:///{os.path.join(state, 'jupyterhub.sqlite')}"
    c.JupyterHub.cookie_secret_file = os.path.join(state, "jupyterhub_cookie_secret")
    c.ConfigurableHTTPProxy.pid_file = os.path.join(state, "jupyterhub-proxy.pid")
    proxy = os.path.join(prefix, ".hub", "node_modules", ".bin", "configurable-http-proxy")
    c.ConfigurableHTTPProxy.command = [proxy if os.path.exists(proxy)
                                       else shutil.which("configurable-http-proxy") or proxy]
    c.JupyterHub.spawner_class = "localprocess"
    if settings["authenticator"] == "pam":
        c.JupyterHub.authenticator_class = "pam"
        # Only the hub's own users; no one else who happens to have a Unix account.
        c.PAMAuthenticator.open_sessions = False
    else:
        raise ValueError(f"authenticator {settings['authenticator']!r}: only 'pam' is supported "
                         "(a TLJH or a site config chooses others)")
