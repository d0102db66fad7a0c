"""How an emulator run fails: one line naming the step and its cause (never "see above", never a bare class)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator


class Failure(Exception):
    """One clear line for the user, naming the step that failed and why (``<step> failed: <cause>``)."""


class Interrupted(BaseException):
    """Raised from SIGINT/SIGTERM in the driver, so that every finally block runs."""


class Unavailable(Exception):
    """Something the run needs before it can start is missing (the emulator extra, the CDK CLI, the app): a usage
    error, exit 2."""


def failed(step: str, why: str | BaseException) -> Failure:
    if isinstance(why, BaseException):
        why = f"{type(why).__name__}: {why}"
    return Failure(f"{step} failed: {why}")


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    """Turn any unexpected exception inside a step into a Failure naming the step, the exception's class and
    message (Failures pass through: they already name their step)."""
    try:
        yield
    except (Failure, Interrupted, Unavailable):
        raise
    except Exception as error:
        raise failed(name, error) from error
