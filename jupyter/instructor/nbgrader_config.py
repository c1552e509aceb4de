"""nbgrader settings of the instructor lab only (`make instructor`, which puts this folder
on JUPYTER_CONFIG_PATH), read before the course's own nbgrader_config.py: the exchange
(release and collect) is a folder of the course, classroom/exchange, made here if missing,
so formgrader shows no missing-exchange warning. On the course hub the exchange is the
class's (REGNORM_EXCHANGE, set by deploy/hub/jupyterhub_config.py)."""
import os

c = get_config()  # noqa: F821  (nbgrader provides get_config)

if os.environ.get("REGNORM_EXCHANGE"):  # on the course hub (deploy/hub/): the class's exchange
    c.Exchange.root = os.environ["REGNORM_EXCHANGE"]
else:
    _exchange = os.path.join(os.getcwd(), "classroom", "exchange")  # the lab runs at the course root
    os.makedirs(_exchange, exist_ok=True)
    c.Exchange.root = _exchange
