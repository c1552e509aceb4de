"""What every check shares: failing with a message that teaches, calling student code
safely, spotting built-in shortcuts, comparing tensors.

A check is a function ``check_<what>(student_object)`` decorated with :func:`check`. It
returns ``None`` when the answer is right and raises ``AssertionError`` otherwise, whose
message names the mistake the answer looks like and how to fix it. Checks never print
to stderr (nbgrader scores a test cell 0 on any stderr output, a warning included) and
seed their own generators, never the global one.
"""
from __future__ import annotations

import functools
import io
import contextlib
import math
import warnings
from typing import Any, Callable, Iterable, NoReturn

import torch

from ..wire import spies

from .. import feedback

__all__ = [
    "check",
    "fail",
    "call",
    "forbid_builtins",
    "generator",
    "expect_raises",
    "binomial_tolerance",
]


_depth = 0  # checks running right now: only the outermost one shows feedback


class _StudentError(Exception):
    """Wraps an exception raised by the student's code so the check can report it."""


def fail(mistake: str, fix: str, detail: str | None = None) -> NoReturn:
    """Fail the check: ``mistake`` says what the answer looks like, ``fix`` what to do."""
    message = mistake.rstrip()
    if detail:
        message += "\n    " + detail.rstrip().replace("\n", "\n    ")
    message += "\n  How to fix: " + fix.rstrip()
    raise AssertionError(message)


def check(fn: Callable[..., Any]) -> Callable[..., None]:
    """Decorator for every check: no warnings reach stderr, the global RNG state is left
    as it was, a stub's NotImplementedError and any other crash of the student's code
    become a readable AssertionError, and the check returns None (a test cell's last
    expression would otherwise be read by nbgrader as a partial score)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        global _depth
        rng_state = torch.random.get_rng_state()
        stderr = io.StringIO()
        failure: AssertionError | None = None
        _depth += 1
        try:
            with warnings.catch_warnings(), contextlib.redirect_stderr(stderr):
                warnings.simplefilter("ignore")
                fn(*args, **kwargs)
        except _StudentError as wrapped:
            failure = AssertionError(str(wrapped))
        except AssertionError as exc:
            failure = exc
        finally:
            _depth -= 1
            torch.random.set_rng_state(rng_state)
        # In a Jupyter kernel the outermost check shows the test's block (feedback.py):
        # one pass line, or the mistake and the fix with a one-line traceback.
        if failure is not None:
            if _depth == 0:
                feedback.show_failure(fn.__name__, failure)
            raise failure from None
        if _depth == 0:
            feedback.show_pass(fn.__name__)
        return None

    wrapper.__grader_check__ = True  # lets tests find every check
    return wrapper


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


def call(fn: Callable[..., Any], *args: Any, _what: str | None = None, **kwargs: Any) -> Any:
    """Call the student's ``fn``; turn any exception into a message that names the call."""
    what = _what or _call_repr(fn, args, kwargs)
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise _StudentError(
            f"{what} raised NotImplementedError: the exercise is not implemented yet.\n"
            "  How to fix: replace `raise NotImplementedError()` with your code."
        ) from None
    except _StudentError:
        raise
    except Exception as exc:  # the student's code crashed: say where and how
        raise _StudentError(
            f"{what} raised {_describe(exc)}\n"
            "  How to fix: run that call yourself in a new cell and read the traceback; "
            "the check expected it to return normally."
        ) from None


def _short(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"<{str(value.dtype).replace('torch.', '')} tensor of shape {tuple(value.shape)}>"
    if isinstance(value, torch.Generator):
        return "<generator>"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _call_repr(fn: Callable[..., Any], args: tuple, kwargs: dict) -> str:
    name = getattr(fn, "__name__", type(fn).__name__)
    parts = [_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


# Records torch functions called by student code; while autograding the same spy runs in
# the student's kernel and reports back through grader.wire (see forbid_builtins).
_Recorder = spies.TorchFunctions


@contextlib.contextmanager
def forbid_builtins(exercise: str, forbidden: Iterable[str], replacement: str):
    """Run student code and fail if it called a built-in that the exercise replaces.

    ``forbidden`` are torch function names (``"dropout"``, ``"batch_norm"`` ...), caught
    however they were reached: ``F.dropout``, ``torch.dropout``, ``nn.Dropout`` ...
    In the lab the spy runs here; through the judge it runs in the student's kernel around
    every call the block makes, and what it saw comes back into ``recorder.names``.
    """
    forbidden = set(forbidden)
    recorder = _Recorder()
    with recorder, spies.watch("torch_functions", recorder.names.extend):
        yield recorder
    used = sorted(forbidden.intersection(recorder.names))
    if used:
        fail(
            f"{exercise} calls PyTorch's own {', '.join(used)}: the exercise is to write "
            "that operation yourself, so the built-in earns no points here.",
            f"compute it from tensor operations ({replacement}).",
        )


def generator(seed: int) -> torch.Generator:
    """A private CPU generator: checks never touch the global RNG."""
    return torch.Generator().manual_seed(seed)


def expect_raises(
    fn: Callable[..., Any],
    *args: Any,
    exc_types: tuple[type[BaseException], ...] = (ValueError,),
    mistake: str,
    fix: str,
    **kwargs: Any,
) -> None:
    """Fail with ``mistake``/``fix`` unless the call raises one of ``exc_types``."""
    what = _call_repr(fn, args, kwargs)
    try:
        fn(*args, **kwargs)
    except exc_types:
        return
    except NotImplementedError:
        raise _StudentError(
            f"{what} raised NotImplementedError: the exercise is not implemented yet.\n"
            "  How to fix: replace `raise NotImplementedError()` with your code."
        ) from None
    except Exception as exc:
        names = " or ".join(t.__name__ for t in exc_types)
        fail(
            f"{what} raised {_describe(exc)}, expected {names}.",
            f"validate the argument first and `raise {exc_types[0].__name__}(...)` with a "
            "message that says what was expected and what was given.",
        )
    fail(mistake, fix, detail=f"({what} returned normally)")


def binomial_tolerance(n: int, p: float, sigmas: float = 6.0) -> float:
    """Half-width for a fraction of ``n`` Bernoulli(p) draws: ``sigmas`` standard
    deviations. Six sigmas: a correct answer fails about 2 times in a billion."""
    return sigmas * math.sqrt(max(p * (1 - p), 1e-12) / n)


# Added for the question exercises (answers computed from the student's own run).

import numbers  # noqa: E402


def as_number(value: Any, name: str) -> float:
    """``value`` as a finite float (a Python number or a one-element tensor), or fail with a
    message saying what ``name`` should hold."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            fail(
                f"{name} is a tensor of shape {tuple(value.shape)}; the question asks for one number.",
                f"assign a single number, for example {name} = float(...) or ....item().",
            )
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy scalars too
        fail(
            f"{name} is {value!r} ({type(value).__name__}), not a number.",
            f"assign a number computed from the run's variables, for example {name} = float(...).",
        )
    value = float(value)
    if not math.isfinite(value):
        fail(f"{name} is {value}, not a finite number.", f"assign a finite number to {name}.")
    return value


def one_of(value: float, allowed, name: str, what: str) -> None:
    """Fail unless ``value`` is (to rounding) one of ``allowed``; ``what`` names the list."""
    allowed = [float(a) for a in allowed]
    if not any(math.isclose(value, a, rel_tol=1e-6, abs_tol=1e-12) for a in allowed):
        shown = ", ".join(f"{a:g}" for a in allowed[:12]) + (" ..." if len(allowed) > 12 else "")
        fail(
            f"{name} = {value:g} is not one of {what} ({shown}).",
            f"pick {name} among {what}: index them with the position your computation selects.",
        )
