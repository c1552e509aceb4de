# One command to run the course, one to test it. Every target sets up .venv on first use.
#   make lab      JupyterLab on course/ (students)
#   make demo     autograde a demo class with real nbgrader (instructors)
#   make test     the whole test suite (CI runs exactly this)
#   make release  regenerate course/ from solutions/
#   make bench    time every solution notebook and the autograder overhead

PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
PY     := $(BIN)/python
# The CPU build of torch; GPU users: see README.md ("GPU users"). May carry pip options.
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed

# nbgrader runs `alembic` from PATH: put the venv first so nothing needs activating.
export PATH := $(BIN):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: all setup lab demo test release bench bench-class check clean
all: lab

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Jupyter refuses to run as root unless told (containers, CI machines).
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)/course" $(ALLOW_ROOT) $(LAB_ARGS)

demo: $(STAMP)
	$(PY) -m grader demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

release: $(STAMP)
	$(PY) -m grader release

bench: $(STAMP)
	$(PY) benchmarks/bench_notebooks.py

# Class throughput: plain nbgrader, 1 worker, N workers (BENCH_ARGS="--workers 2 4 8").
bench-class: $(STAMP)
	$(PY) benchmarks/bench_class.py $(BENCH_ARGS)

# make check NB=course/03-dropout/dropout.ipynb
check: $(STAMP)
	$(PY) -m grader check $(NB)

clean:
	rm -rf classroom .pytest_cache
