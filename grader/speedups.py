"""Less work per notebook in nbgrader's passes, the same results.

The coordinator runs nbgrader over every submission (prepare, record); what it repeats for
every notebook and every cell without need is done once per process here. Loaded by
``nbgrader_config.py`` (so in every nbgrader process of this course); each change keeps
nbgrader's behaviour exactly:

* nbgrader's cell-metadata check (CheckCellMetadata, twice per notebook) calls
  ``jsonschema.validate(meta, schema)``, which checks the *schema* itself and builds a new
  validator for every cell, a third of the record pass. Here the schema is checked once
  and its validator kept; every cell's metadata is validated as before, the same error
  (jsonschema's ``best_match``) raised for a bad one.
"""
from __future__ import annotations

import copy
import json
import types

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    try:
        import jsonschema
        from jsonschema.exceptions import best_match
        from nbgrader.nbgraderformat import common
    except ImportError:  # pragma: no cover (nbgrader not installed: nothing to speed up)
        return
    validators: dict[str, object] = {}  # the schema's JSON -> its checked validator

    def validate(instance, schema, cls=None, *args, **kwargs):
        if cls is not None or args or kwargs:
            return jsonschema.validate(instance, schema, cls, *args, **kwargs)
        text = json.dumps(schema, sort_keys=True)  # nbgrader reads the schema anew per validator
        validator = validators.get(text)
        if validator is None:
            cls_ = jsonschema.validators.validator_for(schema)
            cls_.check_schema(schema)
            validator = validators[text] = cls_(copy.deepcopy(schema))
        error = best_match(validator.iter_errors(instance))
        if error is not None:
            raise error

    shim = types.SimpleNamespace(**{k: getattr(jsonschema, k) for k in dir(jsonschema) if not k.startswith("__")})
    shim.validate = validate
    common.jsonschema = shim


# ------------------------------------------------------------------ process start

def defer_iri_syntax() -> None:
    """jsonschema imports ``rfc3987_syntax`` (for its optional "iri" format check), which
    builds a Lark grammar at import: 0.7 s of every process that imports nbformat, a
    third of an nbgrader process's start. Put a stand-in there that imports the real
    module the first time an IRI is checked (never, in grading), so the check still works.
    Does nothing if jsonschema is already imported or the module is not installed."""
    import importlib
    import importlib.util
    import sys

    if "jsonschema" in sys.modules or "rfc3987_syntax" in sys.modules:
        return
    try:
        if importlib.util.find_spec("rfc3987_syntax") is None:
            return
    except (ImportError, ValueError):  # pragma: no cover
        return
    stand_in = types.ModuleType("rfc3987_syntax")
    stand_in.__doc__ = "grader.speedups: rfc3987_syntax, imported on first use"

    def real():
        if sys.modules.get("rfc3987_syntax") is stand_in:
            del sys.modules["rfc3987_syntax"]
        return importlib.import_module("rfc3987_syntax")

    def is_valid_syntax(*args, **kwargs):
        return real().is_valid_syntax(*args, **kwargs)

    def __getattr__(name):
        if name.startswith("__"):  # the import system's probes (__path__ ...): not the module's names
            raise AttributeError(name)
        return getattr(real(), name)

    stand_in.is_valid_syntax = is_valid_syntax
    stand_in.__getattr__ = __getattr__
    sys.modules["rfc3987_syntax"] = stand_in


# ------------------------------------------------------------------ batch passes

_batch = False


class _FlushOnCommit:
    """A session whose ``commit`` only flushes: SaveAutoGrades' per-cell commits become one
    transaction per notebook (the caller commits the real session once)."""

    def __init__(self, session):
        self._session = session

    def commit(self):
        self._session.flush()

    def __getattr__(self, name):
        return getattr(self._session, name)


def install_batch() -> None:
    """For the nbgrader processes the coordinator starts (``grader.nbgrader_main``), each of
    which grades a class and exits; never in a long-lived server (the formgrader), where
    an engine kept open could outlive a gradebook file. The same rows, fewer round trips:

    * ``Gradebook(url)`` creates an engine, inspects every table, runs ``create_all`` and
      checks the course, about nine times per notebook and pass. Here the first one per
      URL does all that and keeps its engine; later ones open a session on it (the tables
      and the course exist: this process made sure of it). ``close()`` ends the session.
    * SaveAutoGrades commits after every cell (20-30 transactions per notebook, each a
      round trip and a disk sync on PostgreSQL); here it writes the same rows and commits
      once per notebook.
    * A feedback page's last step (nbconvert parses and writes the whole page again) is
      assembled from cells parsed once per process (``grader.pagecache``): the same bytes.
    * An SQLite gradebook is written by several passes at once (the prepare and record
      passes split over the cores, each over its own students): its transactions begin
      with ``BEGIN IMMEDIATE`` (the write lock first: two writers then wait for each other
      instead of one failing with "database is locked" when both upgrade a read lock) and
      wait up to 120 s for the lock.
    """
    global _batch
    install()
    if _batch:
        return
    _batch = True
    from . import pagecache

    pagecache.install()
    try:
        from nbgrader import api
        from nbgrader.preprocessors import SaveAutoGrades
        from sqlalchemy.orm import scoped_session, sessionmaker
    except ImportError:  # pragma: no cover
        return
    import atexit

    create_engine = api.create_engine

    def create_engine_(url, *args, **kwargs):
        if str(url).startswith("sqlite"):
            kwargs["connect_args"] = {"isolation_level": "IMMEDIATE", "timeout": 120,
                                      **kwargs.get("connect_args", {})}
        return create_engine(url, *args, **kwargs)

    api.create_engine = create_engine_
    original_init = api.Gradebook.__init__
    engines: dict[str, object] = {}
    courses: set[tuple[str, str]] = set()

    def __init__(self, db_url, course_id="default_course", authenticator=None):
        engine = engines.get(db_url)
        if engine is None:
            original_init(self, db_url, course_id, authenticator)
            engines[db_url] = self.engine
            courses.add((db_url, course_id))
            return
        self.engine = engine
        self.db = scoped_session(sessionmaker(autoflush=True, bind=engine, future=True))
        if (db_url, course_id) not in courses:
            self.check_course(course_id=course_id)
            courses.add((db_url, course_id))
        self.course_id = course_id
        self.authenticator = authenticator

    original_close = api.Gradebook.close

    def close(self):
        if any(self.engine is e for e in engines.values()):
            self.db.remove()
        else:  # pragma: no cover (an engine this process did not keep)
            original_close(self)

    api.Gradebook.__init__ = __init__
    api.Gradebook.close = close
    atexit.register(lambda: [e.dispose() for e in engines.values()])

    def preprocess(self, nb, resources):
        self.notebook_id = resources["nbgrader"]["notebook"]
        self.assignment_id = resources["nbgrader"]["assignment"]
        self.student_id = resources["nbgrader"]["student"]
        self.db_url = resources["nbgrader"]["db_url"]
        self.gradebook = api.Gradebook(self.db_url)
        with self.gradebook:
            session = self.gradebook.db
            self.gradebook.db = _FlushOnCommit(session)
            try:
                nb, resources = super(SaveAutoGrades, self).preprocess(nb, resources)
                session.commit()
            finally:
                self.gradebook.db = session
        return nb, resources

    SaveAutoGrades.preprocess = preprocess
