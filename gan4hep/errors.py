"""Errors the package raises on purpose. The CLI and the paper scripts turn these, and only these, into one-line
messages: ``InputError`` (what a user's input causes) with exit status 2, ``RunError`` (a run that cannot go on,
e.g. a diverged training) with exit status 3. Any other exception is a bug and keeps its traceback."""

from __future__ import annotations

__all__ = ["InputError", "MissingInput", "RunError", "EXIT_INPUT", "EXIT_RUN"]

#: Exit status of the command-line tools for an ``InputError`` (and ``FileNotFoundError``).
EXIT_INPUT = 2
#: Exit status of the command-line tools for a ``RunError`` (and ``gan4hep.callbacks.TrainingDiverged``).
EXIT_RUN = 3


class InputError(ValueError):
    """Bad input: a file, tree, branch, column or value that cannot be used; the message names it."""


class MissingInput(InputError, KeyError):
    """A tree, branch or column that is not in the file (also a ``KeyError``, as a lookup that failed)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RunError(RuntimeError):
    """A run that cannot go on for a reason the package detected on purpose (not the user's input, not a bug):
    e.g. a training that diverged. The message names the run, the step and the last good checkpoint."""
