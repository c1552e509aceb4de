"""One module of checks per assignment; `_common` holds what they share."""
