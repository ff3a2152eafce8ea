"""Money is `decimal.Decimal`, never a float, on the way in and on the way out.

Amounts sent to the server are checked here before any SQL is sent: a `Decimal` or an `int`
(both exact) passes, a `float` (already rounded in binary: 0.1 is not one tenth) raises
`TypeError`, as does anything else (a string would be read by the server, but the caller meant a
number). JSON sent carries amounts as decimal strings, and JSON read back is parsed with
`parse_float=Decimal`, so `100.50` never passes through a float either way.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Optional, Union

from psycopg.types.json import Jsonb

Amount = Union[Decimal, int]


def amount(value: Any, name: str = "amount") -> Decimal:
    """`value` as a Decimal, or TypeError if it is not an exact number (`bool` is not one)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    raise TypeError(
        f"{name} must be a decimal.Decimal or an int, not {type(value).__name__} ({value!r}):"
        " a float cannot hold most decimal amounts exactly")


def optional_amount(value: Any, name: str = "amount") -> Optional[Decimal]:
    """As `amount`, but None stays None (an argument whose default means "all")."""
    return None if value is None else amount(value, name)


def to_json_value(value: Any, path: str = "$") -> Any:
    """A copy of `value` ready for `json.dumps`: every Decimal as its decimal string, every
    float refused with TypeError (json.dumps would write it without asking us)."""
    if isinstance(value, float):
        raise TypeError(f"{path} is a float ({value!r}); use decimal.Decimal for amounts")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(key): to_json_value(item, f"{path}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(item, f"{path}[{index}]") for index, item in enumerate(value)]
    return value


def dumps(value: Any) -> str:
    """JSON text with amounts as decimal strings; floats refused."""
    return json.dumps(to_json_value(value))


def loads(text: Union[str, bytes]) -> Any:
    """JSON with every number that has a point or an exponent read as a Decimal."""
    return json.loads(text, parse_float=Decimal)


def jsonb(value: Any) -> Optional[Jsonb]:
    """A jsonb parameter (None stays SQL NULL), checked and dumped as `dumps` does."""
    if value is None:
        return None
    return Jsonb(to_json_value(value))
