"""The grading package."""
from .speedups import defer_iri_syntax as _defer_iri_syntax

_defer_iri_syntax()  # 0.7 s off the start of every process that reads notebooks (grader/speedups.py)
