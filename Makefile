# One command to run the course, one to test it. Every target sets up .venv on first use.
#   make lab         JupyterLab on course/ for students (no nbgrader instructor tools)
#   make instructor  JupyterLab on the course root with the formgrader (instructors)
#   make demo        autograde a demo class into classroom/ with real nbgrader (instructors)
#   make report      the class report: HTML page and PNG figures under classroom/report/
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

.PHONY: all setup lab instructor demo report test release bench bench-class check clean
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

# Each lab reads its own Jupyter settings (jupyter/README.md): the student's has no
# formgrader, create-assignment or course list; neither makes a request to the internet.
JUPYTER_DATA := JUPYTER_PATH="$(CURDIR)/jupyter/data"

# Each keeps its own layout (open tabs), so neither reopens the other's files.
lab: $(STAMP)
	JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter/student" $(JUPYTER_DATA) \
	  $(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)/course" \
	  --LabApp.workspaces_dir="$(CURDIR)/$(VENV)/lab-workspaces/student" $(ALLOW_ROOT) $(LAB_ARGS)

instructor: $(STAMP)
	JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter/instructor" $(JUPYTER_DATA) \
	  $(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" \
	  --LabApp.workspaces_dir="$(CURDIR)/$(VENV)/lab-workspaces/instructor" $(ALLOW_ROOT) $(LAB_ARGS)

# JUPYTER_PATH: the feedback pages nbgrader writes load no MathJax from the internet.
demo: $(STAMP)
	$(JUPYTER_DATA) $(PY) -m grader demo

report: $(STAMP)
	$(PY) -m grader report

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
