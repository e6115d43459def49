"""The audience compiled to one parameterised SQL condition on `devices`.

The estimate (`registry.count_audience`, the preview) and the expansion's keyset pages
(`registry.stream_targets`) put the SAME condition after `active AND ...`, so for the same
data they select the same devices. Values are always parameters; only column names and
operators, chosen from fixed tables, are written into the text.

Index use (docs/performance.md has the plans): `tags` has/any/all use the GIN index on tags,
`attributes.<k>` eq/in/exists the GIN index on attributes, `user_id` and `audience.user_ids`
the index on user_id, app versions the btree on app_version_key; the rest are filters
evaluated on the rows of the index range the query already walks (a shard's ids).

Lists of users and devices (`audience.user_ids`, the exclusions, `user_id in`) are one array
parameter each, never one query per user; a stored list (`audience.user_list`,
`exclude_user_list`) is a semi-join on its members' primary key. Up to PROBE_MAX users are a
semi-join the planner may run as index probes on user_id; a longer `audience.user_ids`, and
every exclusion, is a hashed subplan (the sublink inside coalesce() is never turned into a
join): one hash table per query, probed by each row of the range the query walks, so a
shard's page costs its rows, not the length of the list.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import orjson

from pushfan.audience import And, Expr, Leaf, Not, Or, parse
from pushfan.messages import AudienceFilter

_CMP = {"eq": "=", "ne": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_LOCALE = "lower(replace(locale, '_', '-'))"
_COLUMN = {"platform": "platform", "app": "app", "time_zone": "time_zone", "locale": _LOCALE}
_VERSION = {"app_version": "app_version_key", "os_version": "os_version_key"}
# Leaves whose SQL is never NULL need no COALESCE under NOT.
PROBE_MAX = 1_000
_NOT_NULL = frozenset({"platform", "app", "tags", "last_seen"})
# A stored user list (pushfan.user_lists): a semi-join on its primary key (list_id, user_id),
# never NULL (a device without a user_id is in no list).
_MEMBER = (
    "EXISTS (SELECT 1 FROM user_list_members m "
    "WHERE m.list_id = {0} AND m.user_id = devices.user_id)"
)


class _Params:
    def __init__(self, first: int) -> None:
        self.first = first
        self.values: list[Any] = []

    def add(self, value: Any, cast: str) -> str:
        self.values.append(value)
        return f"${self.first + len(self.values) - 1}::{cast}"


class _Compiler:
    def __init__(self, params: _Params, as_of: datetime) -> None:
        self.p = params
        self.as_of = as_of

    def expr(self, node: Expr, negated: bool = False) -> str:
        """`negated` is true under a NOT: leaves are then made two-valued (NULL -> false)."""
        if isinstance(node, And | Or):
            glue = " AND " if isinstance(node, And) else " OR "
            return "(" + glue.join(self.expr(n, negated) for n in node.items) + ")"
        if isinstance(node, Not):
            return f"NOT {self.expr(node.item, True)}"
        sql = self.leaf(node)
        if negated and node.field not in _NOT_NULL:
            return f"coalesce({sql}, false)"
        return sql

    def leaf(self, leaf: Leaf) -> str:
        field, op, value = leaf.field, leaf.op, leaf.value
        if field in _COLUMN:
            column = _COLUMN[field]
            if op == "language":
                return f"split_part({_LOCALE}, '-', 1) = ANY({self.p.add(list(value), 'text[]')})"
            if op == "in":
                return f"{column} = ANY({self.p.add(list(value), 'text[]')})"
            return f"{column} {_CMP[op]} {self.p.add(value, 'text')}"
        if field == "tags":
            if op == "has":
                return f"tags @> ARRAY[{self.p.add(value, 'text')}]"
            operator = "&&" if op == "any" else "@>"
            return f"tags {operator} {self.p.add(list(value), 'text[]')}"
        if field in _VERSION:
            return f"{_VERSION[field]} {_CMP[op]} {self.p.add(value, 'bigint')}"
        if field == "last_seen":
            cutoff = self.as_of - timedelta(seconds=value)
            operator = ">=" if op == "within" else "<"
            return f"last_seen {operator} {self.p.add(cutoff, 'timestamptz')}"
        if field == "user_id":
            values = [value] if op == "eq" else list(value)
            return f"user_id IN (SELECT unnest({self.p.add(values, 'text[]')}))"
        return self.attribute(leaf)

    def attribute(self, leaf: Leaf) -> str:
        op, key, value = leaf.op, leaf.key, leaf.value
        if op == "exists":
            test = f"attributes ? {self.p.add(key, 'text')}"
            return test if value else f"NOT ({test})"
        if op in ("eq", "ne"):
            test = f"attributes @> {self.contains(key, value)}"
            return test if op == "eq" else f"NOT ({test})"
        if op == "in":
            return "(" + " OR ".join(f"attributes @> {self.contains(key, v)}" for v in value) + ")"
        path = self.p.add(key, "text")
        bound = self.p.add(_decimal(value), "numeric")
        return (
            f"CASE WHEN jsonb_typeof(attributes -> {path}) = 'number' "
            f"THEN (attributes -> {path})::numeric {_CMP[op]} {bound} END"
        )

    def contains(self, key: str | None, value: Any) -> str:
        return self.p.add(orjson.dumps({key: value}).decode(), "jsonb")


def condition(audience: AudienceFilter, first_param: int) -> tuple[str, list[Any]]:
    """(" AND ..." or "", params) to append to `WHERE active`; params start at $first_param.

    Raises pushfan.audience.InvalidFilter for a filter that no longer parses (checked at
    submit time, so only a hand-made message can)."""
    params = _Params(first_param)
    clauses: list[str] = []
    if audience.platforms:
        clauses.append(f"platform = ANY({params.add(list(audience.platforms), 'text[]')})")
    if audience.apps:
        clauses.append(f"app = ANY({params.add(list(audience.apps), 'text[]')})")
    if audience.tags:
        clauses.append(f"tags && {params.add(list(audience.tags), 'text[]')}")
    if audience.filter is not None:
        as_of = datetime.fromtimestamp(audience.as_of, UTC) if audience.as_of else _now()
        clauses.append(_Compiler(params, as_of).expr(parse(audience.filter)))
    clauses += _users(audience, params)
    return "".join(f" AND {c}" for c in clauses), params.values


def _users(audience: AudienceFilter, params: _Params) -> list[str]:
    """The clauses of the user and device lists and exclusions."""
    clauses = []
    if audience.user_ids:
        ids = params.add(list(audience.user_ids), "text[]")
        if len(audience.user_ids) <= PROBE_MAX:
            clauses.append(f"user_id IN (SELECT unnest({ids}))")
        else:
            clauses.append(f"coalesce(user_id IN (SELECT unnest({ids})), false)")
    if audience.exclude_user_ids:
        ids = params.add(list(audience.exclude_user_ids), "text[]")
        clauses.append(f"NOT coalesce(user_id IN (SELECT unnest({ids})), false)")
    if audience.user_list is not None:
        clauses.append(_MEMBER.format(params.add(audience.user_list, "uuid")))
    if audience.exclude_user_list is not None:
        clauses.append("NOT " + _MEMBER.format(params.add(audience.exclude_user_list, "uuid")))
    if audience.exclude_device_ids:
        ids = params.add(list(audience.exclude_device_ids), "bigint[]")
        clauses.append(f"NOT (id IN (SELECT unnest({ids})))")
    if audience.delivered_of is not None:  # pushfan.follow_up
        original = params.add(audience.delivered_of, "uuid")
        clauses.append(f"id IN (SELECT device_id FROM delivered_sets WHERE alert_id = {original})")
    return clauses


def without_exclusions(audience: AudienceFilter) -> AudienceFilter | None:
    """The audience before its exclusions, or None if it has none."""
    if not (audience.exclude_user_ids or audience.exclude_device_ids or audience.exclude_user_list):
        return None
    return msgspec.structs.replace(
        audience, exclude_user_ids=[], exclude_device_ids=[], exclude_user_list=None
    )


def excluded(audience: AudienceFilter, first_param: int) -> tuple[str, list[Any]]:
    """(" AND (...)", params): the devices the exclusions remove, as a positive condition
    (index probes on user_id, id and the list's key). With the condition of
    `without_exclusions(audience)` before it, it selects exactly the devices `condition`
    leaves out: each exclusion is two-valued there (NULL counts as not excluded)."""
    params = _Params(first_param)
    tests = []
    if audience.exclude_user_ids:
        tests.append(f"user_id = ANY({params.add(list(audience.exclude_user_ids), 'text[]')})")
    if audience.exclude_device_ids:
        tests.append(f"id = ANY({params.add(list(audience.exclude_device_ids), 'bigint[]')})")
    if audience.exclude_user_list is not None:
        tests.append(_MEMBER.format(params.add(audience.exclude_user_list, "uuid")))
    return f" AND ({' OR '.join(tests)})", params.values


def _decimal(value: float) -> Decimal:
    """The number as written in JSON: the shortest repr keeps float order exact."""
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _now() -> datetime:
    return datetime.now(UTC)
