import os

# Figures render off-screen and nothing warns on stderr during the tests.
os.environ.setdefault("MPLBACKEND", "Agg")
