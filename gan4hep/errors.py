"""Errors a user's input can cause. The CLI and the paper scripts turn these, and only these, into one-line
messages and exit status 2; any other exception is a bug and keeps its traceback."""

from __future__ import annotations

__all__ = ["InputError", "MissingInput"]


class InputError(ValueError):
    """Bad input: a file, tree, branch, column or value that cannot be used; the message names it."""


class MissingInput(InputError, KeyError):
    """A tree, branch or column that is not in the file (also a ``KeyError``, as a lookup that failed)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
