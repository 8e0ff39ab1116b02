"""Training recipes as frozen dataclasses: a paper's recipe is one instance, a preset is ``dataclasses.replace``
of it, and the deviations of any recipe from the paper's are computed here, never written out by hand.

A paper folder defines ``PAPER = Recipe(...)`` (each value citing its sentence) and ``QUICK = replace(PAPER, ...)``;
a run folder stores ``to_dict(recipe)`` once and a resumed run reads it back with ``from_dict``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

R = TypeVar("R")

__all__ = ["deviations", "override", "to_dict", "from_dict", "select"]


def _check(recipe) -> None:
    if not (dataclasses.is_dataclass(recipe) and not isinstance(recipe, type)):
        raise TypeError(f"a recipe is a dataclass instance, got {type(recipe).__name__}")


def deviations(recipe, reference, label: str = "paper", unused: Iterable[str] = ()) -> list[str]:
    """Fields of ``recipe`` that differ from ``reference`` (the paper's recipe), as ``"name: ours (paper: theirs)"``.

    Args:
        recipe, reference: instances of the same recipe dataclass.
        label: what the reference is called in the output.
        unused: fields the run does not read (e.g. a GAN's objective fields in a run of another model family on
            the same recipe): not listed, whatever their values.

    Raises:
        TypeError: the two are not instances of the same dataclass; a name in ``unused`` that is not a field.
    """
    _check(recipe)
    if type(recipe) is not type(reference):
        raise TypeError(f"cannot compare a {type(recipe).__name__} with a {type(reference).__name__}")
    names = [f.name for f in dataclasses.fields(recipe)]
    skip = set(unused)
    if skip - set(names):
        raise TypeError(f"{type(recipe).__name__} has no field(s) {', '.join(sorted(skip - set(names)))}")
    return [f"{name}: {getattr(recipe, name)} ({label}: {getattr(reference, name)})"
            for name in names if name not in skip and getattr(recipe, name) != getattr(reference, name)]


def override(recipe: R, **values: Any) -> R:
    """``dataclasses.replace(recipe, **values)`` for the values that are not None (command-line options left unset).

    Raises:
        TypeError: a name that is not a field of the recipe.
    """
    _check(recipe)
    names = {f.name for f in dataclasses.fields(recipe)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise TypeError(f"{type(recipe).__name__} has no field(s) {', '.join(unknown)}")
    return dataclasses.replace(recipe, **{k: v for k, v in values.items() if v is not None})


def _jsonable(value):
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def to_dict(recipe) -> dict:
    """The recipe as a JSON-ready dict (tuples become lists)."""
    _check(recipe)
    return {f.name: _jsonable(getattr(recipe, f.name)) for f in dataclasses.fields(recipe)}


def _like(value, hint):
    """A JSON value converted back to the container type the recipe's type hint names (lists -> tuples)."""
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:  # Optional[...] / X | None: the non-None member
        hints = [h for h in typing.get_args(hint) if h is not type(None)]
        return value if value is None or len(hints) != 1 else _like(value, hints[0])
    if (hint is tuple or origin is tuple) and isinstance(value, list):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return tuple(_like(v, args[0] if len(args) == 1 else None) for v in value)
    return value


def from_dict(cls: type[R], data: Mapping, base: R | None = None) -> R:
    """Rebuild a recipe of type ``cls`` from ``to_dict`` output.

    Args:
        cls: the recipe dataclass.
        data: the stored dict (a run folder's recipe.json).
        base: where keys missing from ``data`` (a run written by an older version) are taken from; without it
            every field must be present.

    Raises:
        ValueError: ``data`` has keys that are not fields of ``cls``, or lacks fields and no ``base`` is given.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"recipe has unknown field(s) {', '.join(unknown)} for {cls.__name__}")
    missing = sorted(set(fields) - set(data))
    if missing and base is None:
        raise ValueError(f"recipe lacks field(s) {', '.join(missing)} of {cls.__name__}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name in fields:
        values[name] = _like(data[name], hints.get(name)) if name in data else getattr(base, name)
    return cls(**values)


def select(presets: Mapping[str, R], name: str) -> R:
    """The preset called ``name``.

    Raises:
        ValueError: no preset of that name (lists the ones there are).
    """
    if name not in presets:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(sorted(presets))}")
    return presets[name]
