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
