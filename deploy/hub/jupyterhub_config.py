"""JupyterHub for one class on one server: the course's environment, the nbgrader exchange,
the student lab (Assignments tab) for students and the instructor lab (formgrader) for
instructors. Real Unix users, PAM login, the standard local spawner (each server runs as
its user). Settings: /etc/regnorm-hub/settings.json or REGNORM_HUB_SETTINGS (see
regnorm_hub.py); `install.sh` writes them. Run as root:

    jupyterhub -f /opt/regnorm/deploy/hub/jupyterhub_config.py
"""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location(
    "regnorm_hub", os.path.join(os.path.dirname(os.path.abspath(__file__)), "regnorm_hub.py"))
regnorm_hub = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(regnorm_hub)

c = get_config()  # noqa: F821  (JupyterHub provides get_config)
regnorm_hub.configure(c, regnorm_hub.load_settings())
