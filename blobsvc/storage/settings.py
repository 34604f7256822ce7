"""Driver settings declared once, as a typed frozen dataclass per driver.

A driver's settings class is the single statement of its keys, their types
and their defaults: the config loader checks a file against it, and
``check-config`` runs its :meth:`DriverSettings.validate` without touching
the backend, so a value the driver would refuse is refused before start-up.
Types are read from the annotations (``typing.get_type_hints``), so any
``X | None`` or union of plain types works without a table to keep in step;
the config loader shares the same reading for its own sections.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Mapping, TypeVar

#: Plain value types a setting may take from a YAML scalar or an environment variable.
SCALAR_TYPES: frozenset[type] = frozenset({str, int, float, bool, type(None)})


@dataclass(frozen=True)
class DriverSettings:
    """Base of a driver's settings: fields typed, defaults given (no default = required)."""

    def validate(self) -> None:
        """Raise ValueError("storage.<key> ...") for an out-of-range value; no I/O."""


S = TypeVar("S", bound=DriverSettings)


def build_settings(cls: type[S], params: Mapping[str, object], driver: str) -> S:
    """``cls`` built from ``params`` (the config's storage keys), then validated.

    Unknown key, wrong type (from the field annotations, resolved with
    ``typing.get_type_hints``, so ``float | None`` works), missing required
    key: ValueError naming ``storage.<key>``; then ``validate()``.
    """
    expected = field_types(cls)
    values: dict[str, object] = {}
    for key, value in params.items():
        if key not in expected:
            raise ValueError(f"unknown key storage.{key} for driver {driver}")
        values[key] = check_type(value, expected[key], f"storage.{key}")
    for field in dataclasses.fields(cls):
        if field.init and field.name not in values and _is_required(field):
            raise ValueError(f"storage.{field.name} is required by driver {driver}")
    settings = cls(**values)
    settings.validate()
    return settings


def field_types(cls: type) -> dict[str, tuple[type, ...]]:
    """The types each init field of the dataclass ``cls`` accepts.

    A ``float`` field also takes an int (YAML writes ``10`` for ten
    seconds); :func:`check_type` turns it into a float.
    """
    hints = typing.get_type_hints(cls)
    return {field.name: accepted_types(hints[field.name])
            for field in dataclasses.fields(cls) if field.init}


def accepted_types(hint: Any) -> tuple[type, ...]:
    """``int | None`` -> ``(int, NoneType)``; ``tuple[str, ...]`` -> ``(tuple,)``."""
    if hint is Any:
        return (object,)
    if hint is None:
        return (type(None),)
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        accepted: list[type] = []
        for arg in typing.get_args(hint):
            accepted.extend(t for t in accepted_types(arg) if t not in accepted)
        return tuple(accepted)
    if origin is not None:
        return (origin,)
    if hint is float:
        return (float, int)
    return (hint,)


def check_type(value: object, expected: tuple[type, ...], where: str) -> Any:
    """``value`` if it is one of ``expected`` (a float field's int as a float).

    A bool is never taken for an int (``port: true``); the ValueError names
    ``where`` and the types wanted.
    """
    is_bool = isinstance(value, bool)
    if (is_bool and bool not in expected) or not isinstance(value, expected):
        names = " or ".join("null" if t is type(None) else t.__name__ for t in expected)
        raise ValueError(f"{where} must be {names}, not {value!r}")
    if float in expected and int in expected and isinstance(value, int) and not is_bool:
        return float(value)
    return value


def _is_required(field: dataclasses.Field[Any]) -> bool:
    return (field.default is dataclasses.MISSING
            and field.default_factory is dataclasses.MISSING)
