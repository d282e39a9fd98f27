"""The one exception type for user errors, and the exception a SIGTERM becomes.

Anything a user can get wrong (a config key, a file, a value out of range) raises
:class:`FedsimError` with a one-line message naming the offending key or file and what is
allowed. The CLI turns it into one line on stderr and exit code 2; every other exception is
a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FedsimError", "Terminated", "raise_terminated", "sigterm_received"]

_SIGTERM: list[int] = []  # set once a SIGTERM arrived (typer reports every KeyboardInterrupt as exit 130)


class FedsimError(Exception):
    """A user error with a one-line, self-explanatory message."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process was, so that it unwinds like Ctrl-C (completed rounds
    kept, summary marked interrupted); the CLI exits with 143 (128 + SIGTERM) instead of 130."""


def raise_terminated(signum: int, frame: Any) -> None:
    """A ``signal.signal`` handler: turn SIGTERM into :class:`Terminated`."""
    _SIGTERM.append(signum)
    raise Terminated


def sigterm_received() -> bool:
    """Whether :func:`raise_terminated` ran in this process (the CLI then exits with 143, not 130)."""
    return bool(_SIGTERM)
