"""The course on The Littlest JupyterHub: copy (or link) this file into
/opt/tljh/config/jupyterhub_config.d/ and run `install.sh --tljh` (which writes the
settings). TLJH keeps its own authenticator, systemd spawner and address; this adds the
course's environment, the exchange and the two labs. Then `sudo tljh-config reload`."""
import importlib.util
import os

_path = os.environ.get("REGNORM_HUB_MODULE", "/opt/regnorm/deploy/hub/regnorm_hub.py")
_spec = importlib.util.spec_from_file_location("regnorm_hub", _path)
regnorm_hub = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(regnorm_hub)

regnorm_hub.configure(c, regnorm_hub.load_settings(), tljh=True)  # noqa: F821  (TLJH provides c)
