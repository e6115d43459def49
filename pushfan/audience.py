"""The segment language: a JSON expression over device fields, parsed into a small tree.

    {"and": [e, ...]}   {"or": [e, ...]}   {"not": e}
    {"<field>": {"<op>": value}}                      (a leaf: one field, one operator)

field                        operators                         value
platform, app, time_zone     eq ne in                          string (a list for in)
tags                         has any all                       tag (a list for any, all)
locale                       eq in language                    "fr-CA" ('_' and case ignored);
                                                               language "fr" (or a list)
                                                               matches fr, fr-CA, fr-FR...
app_version, os_version      eq ne lt lte gt gte               "5.2" (pushfan.versions)
last_seen                    within older_than                 seconds, or "30d" "12h" "15m"
attributes.<key>             eq ne in lt lte gt gte exists     string/number/bool; numbers
                                                               for lt..gte; bool for exists
user_id                      eq in                             string (a list for in)

Semantics are two-valued: a leaf on a field the device lacks (no locale, no parsable version,
no such attribute) is false, so `{"not": leaf}` matches it. `ne` is `not eq`. Attribute
values compare by JSON type: `true` never equals `1`, numbers compare as numbers.

Bounds: depth <= MAX_DEPTH, nodes <= MAX_NODES, list values <= MAX_VALUES in all. Any breach
or malformed node raises InvalidFilter naming where (`$.and[2].app_version`), a 422.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from pushfan.versions import parse_version

MAX_DEPTH = 8
MAX_NODES = 100
MAX_VALUES = 1_000
MAX_STRING = 256
MAX_SECONDS = 10 * 366 * 86_400
MAX_ABS_NUMBER = 2**53

ATTRIBUTE_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DURATION = re.compile(r"^(\d{1,9})([dhms])$")
_UNIT_S = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}

Scalar = str | int | float | bool


class InvalidFilter(ValueError):
    """The expression is malformed or too big; the message says where and why."""


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Expr


@dataclass(frozen=True, slots=True)
class Leaf:
    """`field` is a column name or "attributes"; `key` the attribute key; `value` already
    normalised (locales lower-cased with '-', versions as keys, durations as seconds)."""

    field: str
    op: str
    value: Any
    key: str | None = None


Expr = And | Or | Not | Leaf

_OPS: dict[str, frozenset[str]] = {
    "platform": frozenset({"eq", "ne", "in"}),
    "app": frozenset({"eq", "ne", "in"}),
    "time_zone": frozenset({"eq", "ne", "in"}),
    "tags": frozenset({"has", "any", "all"}),
    "locale": frozenset({"eq", "in", "language"}),
    "app_version": frozenset({"eq", "ne", "lt", "lte", "gt", "gte"}),
    "os_version": frozenset({"eq", "ne", "lt", "lte", "gt", "gte"}),
    "last_seen": frozenset({"within", "older_than"}),
    "attributes": frozenset({"eq", "ne", "in", "lt", "lte", "gt", "gte", "exists"}),
    "user_id": frozenset({"eq", "in"}),
}
_LIST_OPS = frozenset({"in", "any", "all"})


def normalise_locale(locale: str) -> str:
    return locale.replace("_", "-").lower()


def language(locale: str) -> str:
    return normalise_locale(locale).split("-", 1)[0]


class _Parser:
    def __init__(self) -> None:
        self.nodes = 0
        self.values = 0

    def expr(self, doc: Any, path: str, depth: int) -> Expr:
        if depth > MAX_DEPTH:
            raise InvalidFilter(f"{path}: nested deeper than {MAX_DEPTH} levels")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise InvalidFilter(f"{path}: more than {MAX_NODES} nodes in the expression")
        if not isinstance(doc, dict) or len(doc) != 1:
            raise InvalidFilter(f"{path}: expected an object with exactly one key")
        ((name, arg),) = doc.items()
        if name in ("and", "or"):
            if not isinstance(arg, list) or not arg:
                raise InvalidFilter(f"{path}.{name}: expected a non-empty list of expressions")
            items = tuple(self.expr(a, f"{path}.{name}[{n}]", depth + 1) for n, a in enumerate(arg))
            return And(items) if name == "and" else Or(items)
        if name == "not":
            return Not(self.expr(arg, f"{path}.not", depth + 1))
        return self.leaf(name, arg, f"{path}.{name}")

    def leaf(self, name: str, arg: Any, path: str) -> Leaf:
        field, _, key = name.partition(".")
        if field not in _OPS or (field == "attributes") != bool(key):
            known = ", ".join(sorted(_OPS))
            raise InvalidFilter(f"{path}: unknown field (one of {known}, attributes.<key>)")
        if key and not ATTRIBUTE_KEY.match(key):
            raise InvalidFilter(f"{path}: an attribute key is 1-64 of [A-Za-z0-9_-]")
        if not isinstance(arg, dict) or len(arg) != 1:
            raise InvalidFilter(f"{path}: expected {{operator: value}} with one operator")
        ((op, value),) = arg.items()
        if op not in _OPS[field]:
            raise InvalidFilter(f"{path}: operator {op!r} not one of {sorted(_OPS[field])}")
        where = f"{path}.{op}"
        if op in _LIST_OPS or (field == "locale" and op == "language" and isinstance(value, list)):
            if not isinstance(value, list) or not value:
                raise InvalidFilter(f"{where}: expected a non-empty list")
            self.values += len(value)
            if self.values > MAX_VALUES:
                raise InvalidFilter(f"{where}: more than {MAX_VALUES} values in the expression")
            items = tuple(_value(field, op, v, f"{where}[{n}]") for n, v in enumerate(value))
            return Leaf(field, op, items, key or None)
        self.values += 1
        if field == "locale" and op == "language":
            return Leaf(field, op, (_value(field, op, value, where),))
        return Leaf(field, op, _value(field, op, value, where), key or None)


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_STRING:
        raise InvalidFilter(f"{where}: expected a string of 1 to {MAX_STRING} characters")
    return value


def _number(value: Any, where: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidFilter(f"{where}: expected a number")
    if not math.isfinite(value) or abs(value) > MAX_ABS_NUMBER:
        raise InvalidFilter(f"{where}: numbers are finite and at most 2**53 in size")
    return value


def scalar(value: Any, where: str) -> Scalar:
    """An attribute value: a string, a bool or a finite number (also used at registration)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _string(value, where) if value else value
    return _number(value, where)


def _seconds(value: Any, where: str) -> int:
    if isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = int(m.group(1)) * _UNIT_S[m.group(2)]
    elif isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    else:
        raise InvalidFilter(f"{where}: expected seconds or a duration like '30d', '12h'")
    if not 1 <= seconds <= MAX_SECONDS:
        raise InvalidFilter(f"{where}: a duration is 1 s to 10 years")
    return seconds


def _value(field: str, op: str, value: Any, where: str) -> Any:
    if field == "locale":
        return normalise_locale(_string(value, where))
    if field in ("app_version", "os_version"):
        try:
            return parse_version(_string(value, where))
        except ValueError as exc:
            raise InvalidFilter(f"{where}: {exc}") from None
    if field == "last_seen":
        return _seconds(value, where)
    if field == "attributes":
        if op == "exists":
            if not isinstance(value, bool):
                raise InvalidFilter(f"{where}: expected true or false")
            return value
        if op in ("lt", "lte", "gt", "gte"):
            return _number(value, where)
        return scalar(value, where)
    return _string(value, where)


def parse(doc: Any) -> Expr:
    """The tree of a JSON expression; raises InvalidFilter."""
    return _Parser().expr(doc, "$", 1)
