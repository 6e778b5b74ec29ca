"""Frozen dataclasses to and from JSON objects, with validation that names the field.

A field's JSON key is its name, or ``field.metadata["json"]`` (:func:`json_field`,
e.g. for ``in``, a Python keyword). :func:`to_json` leaves out an optional field that
is ``None``; :func:`from_json` checks every value against the field's type (``int``,
``float``, ``str``, ``bool``, ``list[...]``, ``dict[str, ...]``, ``X | None``, nested
dataclasses) and raises ``error(message)`` naming the source and the field's path.
A field named ``source`` is never read or written (it records where a value came from).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Callable

__all__ = ["from_json", "json_field", "to_json"]

_JSON = "json"  # field metadata: the JSON key, when it differs from the field name


def json_field(key: str, **kwargs):
    """A field written under another JSON key (``in`` is a Python keyword)."""
    return dataclasses.field(metadata={_JSON: key}, **kwargs)


def _json_key(field: dataclasses.Field) -> str:
    return field.metadata.get(_JSON) or field.name


def to_json(value: Any) -> Any:
    """A dataclass (lists, dicts of them) as plain JSON values."""
    if dataclasses.is_dataclass(value):
        out = {}
        for field in dataclasses.fields(value):
            if field.name == "source":
                continue
            item = getattr(value, field.name)
            if item is None and field.default is None:
                continue  # optional and absent: not written
            out[_json_key(field)] = to_json(item)
        return out
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp))


def _check(value: Any, tp, where: str, source: str, error: Callable) -> Any:
    """``value`` converted to ``tp`` (dataclasses built), or a ManifestError."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _check(value, inner, where, source, error)
    if dataclasses.is_dataclass(tp):
        return from_json(tp, value, where, source, error)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise error(f"{source}: {where} must be a list, got {type(value).__name__}")
        return [_check(v, args[0], f"{where}[{i}]", source, error) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise error(f"{source}: {where} must be an object, got "
                                f"{type(value).__name__}")
        return {k: _check(v, args[1], f"{where}.{k}", source, error) for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool) or not isinstance(value, tp):
        raise error(f"{source}: {where} must be {_type_name(tp)}, got "
                            f"{type(value).__name__} {value!r:.40}")
    return value


def from_json(cls, data: Any, where: str, source: str,
              error: Callable[[str], Exception] = ValueError):
    """``cls`` built from ``data``; ``error(message)`` is raised on a missing or
    mistyped field (``where`` is the path of ``data`` in the document)."""
    if not isinstance(data, dict):
        what = f"{source}: {where}" if where else source
        raise error(f"{what} is not a JSON object (got {type(data).__name__})")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name == "source":
            continue
        key = _json_key(field)
        path = f"{where}.{key}" if where else key
        if key not in data:
            if field.default is dataclasses.MISSING and (
                    field.default_factory is dataclasses.MISSING):
                raise error(f"{source}: no {path!r}")
            continue
        kwargs[field.name] = _check(data[key], hints[field.name], path, source, error)
    return cls(**kwargs)
