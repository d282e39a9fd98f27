"""The one exception type for user errors.

Anything a user can get wrong (a config key, a file, a value out of range) raises
:class:`FedsimError` with a one-line message naming the offending key or file and what is
allowed. The CLI turns it into one line on stderr and exit code 2; every other exception is
a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["FedsimError"]


class FedsimError(Exception):
    """A user error with a one-line, self-explanatory message."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
