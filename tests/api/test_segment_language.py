"""The segment language: the compiled SQL selects exactly what a brute-force Python evaluator
of the same expression selects, over random devices and random expressions (hypothesis); the
estimate and the expansion's keyset pages agree; malformed expressions are refused."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pushfan import db, preview, registry
from pushfan.audience import And, Expr, InvalidFilter, Leaf, Not, Or, parse
from pushfan.audience_sql import PROBE_MAX, condition
from pushfan.messages import AudienceFilter
from pushfan.provider import PLATFORM_PROVIDER
from pushfan.settings import Settings
from pushfan.versions import version_key

AS_OF = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PLATFORMS = ["ios", "android"]
APPS = ["alpha", "beta"]
TAGS = ["a", "b", "c", "d"]
LOCALES = [None, "en", "en-US", "en_us", "fr", "fr-CA", "FR_ca", "de-DE", "pt-BR"]
ZONES = [None, "UTC", "Europe/Paris"]
VERSIONS = [None, "1.0", "5.2", "5.2.0", "5.2.1", "5.10", "junk", "v6"]
AGES_S = [0, 3_600, 2 * 86_400, 30 * 86_400, 31 * 86_400, 400 * 86_400]
ATTR_KEYS = ["plan", "age", "beta"]
ATTR_VALUES: list[Any] = ["pro", "free", "", 0, 1, 1.0, 2.5, -3, True, False]
USERS = [None, "u1", "u2", "u3"]
# Longer than audience_sql.PROBE_MAX: the hashed-subplan form of audience.user_ids.
LONG_LIST = [f"nobody-{n}" for n in range(PROBE_MAX + 1)]


@dataclass(frozen=True)
class Device:
    platform: str
    app: str
    tags: list[str]
    locale: str | None
    time_zone: str | None
    app_version: str | None
    os_version: str | None
    age_s: int
    attributes: dict[str, Any] = field(default_factory=dict)
    user_id: str | None = None
    active: bool = True


# ---- the brute-force evaluator: the language's semantics, written without SQL ----


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    return bool(a == b)


_CMP = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
}


def _column(d: Device, leaf: Leaf) -> bool:
    value = getattr(d, leaf.field)
    if value is None:
        return False
    return value in leaf.value if leaf.op == "in" else bool(_CMP[leaf.op](value, leaf.value))


def _tags(d: Device, leaf: Leaf) -> bool:
    tags, v = set(d.tags), leaf.value
    if leaf.op == "has":
        return v in tags
    return bool(tags & set(v)) if leaf.op == "any" else set(v) <= tags


def _locale(d: Device, leaf: Leaf) -> bool:
    if d.locale is None:
        return False
    norm = d.locale.replace("_", "-").lower()
    if leaf.op == "language":
        return norm.split("-")[0] in leaf.value
    return norm in leaf.value if leaf.op == "in" else norm == leaf.value


def _version(d: Device, leaf: Leaf) -> bool:
    key = version_key(getattr(d, leaf.field))
    return key is not None and bool(_CMP[leaf.op](key, leaf.value))


def _last_seen(d: Device, leaf: Leaf) -> bool:
    seen = AS_OF - timedelta(seconds=d.age_s)
    cutoff = AS_OF - timedelta(seconds=leaf.value)
    return seen >= cutoff if leaf.op == "within" else seen < cutoff


def _user_id(d: Device, leaf: Leaf) -> bool:
    users = [leaf.value] if leaf.op == "eq" else leaf.value
    return d.user_id is not None and d.user_id in users


def _attribute(d: Device, leaf: Leaf) -> bool:
    assert leaf.key is not None
    op, v = leaf.op, leaf.value
    present = leaf.key in d.attributes
    a = d.attributes.get(leaf.key)
    if op == "exists":
        return present == v
    if op in ("eq", "ne"):
        eq = present and _same(a, v)
        return eq if op == "eq" else not eq
    if op == "in":
        return present and any(_same(a, x) for x in v)
    number = present and not isinstance(a, bool) and isinstance(a, int | float)
    return number and bool(_CMP[op](a, v))


_LEAF = {
    "platform": _column,
    "app": _column,
    "time_zone": _column,
    "tags": _tags,
    "locale": _locale,
    "app_version": _version,
    "os_version": _version,
    "last_seen": _last_seen,
    "user_id": _user_id,
    "attributes": _attribute,
}


def evaluate(d: Device, node: Expr) -> bool:
    if isinstance(node, And):
        return all(evaluate(d, n) for n in node.items)
    if isinstance(node, Or):
        return any(evaluate(d, n) for n in node.items)
    if isinstance(node, Not):
        return not evaluate(d, node.item)
    return _LEAF[node.field](d, node)


def selects(device_id: int, d: Device, a: AudienceFilter) -> bool:
    if not d.active:
        return False
    if a.platforms and d.platform not in a.platforms:
        return False
    if a.apps and d.app not in a.apps:
        return False
    if a.tags and not set(a.tags) & set(d.tags):
        return False
    if a.filter is not None and not evaluate(d, parse(a.filter)):
        return False
    if a.user_ids and d.user_id not in a.user_ids:
        return False
    if d.user_id is not None and d.user_id in a.exclude_user_ids:
        return False
    return device_id not in a.exclude_device_ids


# ---- strategies ----

devices = st.builds(
    Device,
    platform=st.sampled_from(PLATFORMS),
    app=st.sampled_from(APPS),
    tags=st.lists(st.sampled_from(TAGS), max_size=3, unique=True),
    locale=st.sampled_from(LOCALES),
    time_zone=st.sampled_from(ZONES),
    app_version=st.sampled_from(VERSIONS),
    os_version=st.sampled_from(VERSIONS),
    age_s=st.sampled_from(AGES_S),
    attributes=st.dictionaries(st.sampled_from(ATTR_KEYS), st.sampled_from(ATTR_VALUES)),
    user_id=st.sampled_from(USERS),
    active=st.booleans(),
)


def _op(field_name: str, ops: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    return st.sampled_from(sorted(ops)).flatmap(
        lambda op: ops[op].map(lambda value: {field_name: {op: value}})
    )


def _choice(values: list[Any]) -> dict[str, st.SearchStrategy[Any]]:
    one = st.sampled_from(values)
    return {"eq": one, "ne": one, "in": st.lists(one, min_size=1, max_size=3)}


versions = st.sampled_from(["1", "5.2", "5.2.1", "5.10", "6"])
numbers = st.sampled_from([0, 1, 2.5, -3, 1.5])
leaves = st.one_of(
    _op("platform", _choice([*PLATFORMS, "web"])),
    _op("app", _choice(APPS)),
    _op("time_zone", _choice(["UTC", "Europe/Paris", "Asia/Tokyo"])),
    _op(
        "tags",
        {
            "has": st.sampled_from(TAGS),
            "any": st.lists(st.sampled_from(TAGS), min_size=1, max_size=3),
            "all": st.lists(st.sampled_from(TAGS), min_size=1, max_size=3),
        },
    ),
    _op(
        "locale",
        {
            "eq": st.sampled_from(["en", "en-US", "fr_CA", "de-de"]),
            "in": st.lists(st.sampled_from(["en", "fr-ca", "pt-BR"]), min_size=1, max_size=2),
            "language": st.one_of(
                st.sampled_from(["en", "fr", "de"]),
                st.lists(st.sampled_from(["en", "fr", "pt", "es"]), min_size=1, max_size=2),
            ),
        },
    ),
    *(
        _op(name, {op: versions for op in ("eq", "ne", "lt", "lte", "gt", "gte")})
        for name in ("app_version", "os_version")
    ),
    _op(
        "last_seen",
        {
            "within": st.sampled_from([3_600, "2d", "30d", 31 * 86_400, "1h"]),
            "older_than": st.sampled_from([3_600, "2d", "30d", "31d", "1m"]),
        },
    ),
    st.sampled_from(ATTR_KEYS).flatmap(
        lambda key: _op(
            f"attributes.{key}",
            {
                **_choice(ATTR_VALUES),
                **{op: numbers for op in ("lt", "lte", "gt", "gte")},
                "exists": st.booleans(),
            },
        )
    ),
    _op(
        "user_id",
        {
            "eq": st.sampled_from(["u1", "u2"]),
            "in": st.lists(st.sampled_from(["u1", "u2", "u9"]), min_size=1),
        },
    ),
)
expressions = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda items: {"and": items}),
        st.lists(children, min_size=1, max_size=3).map(lambda items: {"or": items}),
        children.map(lambda item: {"not": item}),
    ),
    max_leaves=8,
)


def _rarely(values: st.SearchStrategy[list[Any]]) -> st.SearchStrategy[list[Any]]:
    """Mostly empty: each extra clause narrows the audience, and a test where most examples
    select nobody would test little."""
    return st.one_of(st.just([]), st.just([]), st.just([]), values)


audiences = st.builds(
    AudienceFilter,
    platforms=_rarely(st.lists(st.sampled_from(PLATFORMS), min_size=1, max_size=1)),
    apps=_rarely(st.lists(st.sampled_from(APPS), min_size=1, max_size=1)),
    tags=_rarely(st.lists(st.sampled_from(TAGS), min_size=1, max_size=2)),
    filter=st.one_of(expressions, expressions, expressions, st.none()),
    user_ids=_rarely(
        st.lists(st.sampled_from(["u1", "u2", "u3"]), min_size=1, max_size=2).flatmap(
            lambda users: st.sampled_from([users, users + LONG_LIST])
        )
    ),
    exclude_user_ids=_rarely(st.lists(st.sampled_from(["u1", "u3"]), min_size=1, max_size=1)),
    exclude_device_ids=_rarely(st.lists(st.integers(1, 12), min_size=1, max_size=3)),
    as_of=st.just(AS_OF.timestamp()),
)

COLUMNS = (
    "platform", "app", "token", "tags", "locale", "time_zone", "app_version",
    "app_version_key", "os_version", "os_version_key", "last_seen", "attributes", "user_id",
    "active",
)  # fmt: skip


def _record(n: int, d: Device) -> tuple[Any, ...]:
    return (
        d.platform,
        d.app,
        f"token-{n:040d}",
        d.tags,
        d.locale,
        d.time_zone,
        d.app_version,
        version_key(d.app_version),
        d.os_version,
        version_key(d.os_version),
        AS_OF - timedelta(seconds=d.age_s),
        orjson.dumps(d.attributes).decode(),
        d.user_id,
        d.active,
    )


async def _check(
    conn: asyncpg.Connection, population: list[Device], audience: AudienceFilter
) -> None:
    await conn.execute("TRUNCATE devices RESTART IDENTITY")
    records = [_record(n, d) for n, d in enumerate(population)]
    await conn.copy_records_to_table("devices", records=records, columns=COLUMNS)
    expected = {n + 1 for n, d in enumerate(population) if selects(n + 1, d, audience)}
    where, params = condition(audience, 1)
    rows = await conn.fetch(f"SELECT id FROM devices WHERE active{where}", *params)
    assert {r["id"] for r in rows} == expected, where
    # The estimate and the expansion (two shards, pages of 3) agree with it exactly.
    assert await registry.count_audience(conn, audience) == len(expected)
    # The dry run's breakdown per provider, app and locale too.
    groups = Counter(
        (
            PLATFORM_PROVIDER[d.platform],
            d.app,
            d.locale.replace("_", "-").lower() if d.locale else None,
        )
        for n, d in enumerate(population)
        if n + 1 in expected
    )
    buckets = await preview.breakdown(conn, audience)
    assert {(b.provider, b.app, b.locale): b.devices for b in buckets} == groups
    streamed: list[int] = []
    for lo, hi in ((1, 8), (8, len(population) + 1)):
        async for page in registry.stream_targets(conn, lo, hi, audience, page_size=3):
            streamed += [t.id for t in page]
    assert streamed == sorted(expected)


def test_sql_selects_what_the_evaluator_selects(settings: Settings) -> None:
    with asyncio.Runner() as runner:
        runner.run(db.migrate(settings))
        conn = runner.run(db.connect(settings))
        try:

            @hsettings(
                max_examples=300,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )
            @given(population=st.lists(devices, min_size=5, max_size=30), audience=audiences)
            def check(population: list[Device], audience: AudienceFilter) -> None:
                runner.run(_check(conn, population, audience))

            check()
        finally:
            runner.run(conn.close())
            runner.run(db.drop_schema(settings))


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"colour": {"eq": "red"}}, "$.colour: unknown field"),
        ({"platform": {"gt": "ios"}}, "$.platform: operator 'gt'"),
        ({"and": []}, "$.and: expected a non-empty list"),
        ({"and": [{"app": {"eq": "a"}}, {"app_version": {"gte": "latest"}}]}, "$.and[1]"),
        ({"attributes.plan": {"lt": "pro"}}, "expected a number"),
        ({"attributes": {"eq": 1}}, "unknown field"),
        ({"attributes.a.b": {"eq": 1}}, "attribute key"),
        ({"last_seen": {"within": "soon"}}, "duration"),
        ({"tags": {"any": ["x"] * 1_001}}, "more than 1000 values"),
        ({"app": "alpha"}, "one operator"),
        ({"app": {"eq": "a"}, "platform": {"eq": "ios"}}, "exactly one key"),
    ],
)
def test_malformed_expressions_are_refused_with_where_and_why(doc: Any, reason: str) -> None:
    with pytest.raises(InvalidFilter, match=reason.replace("$", r"\$").replace("[", r"\[")):
        parse(doc)


def test_depth_and_size_are_bounded() -> None:
    deep: Any = {"app": {"eq": "a"}}
    for _ in range(8):
        deep = {"not": deep}
    with pytest.raises(InvalidFilter, match="deeper than 8"):
        parse(deep)
    wide = {"or": [{"app": {"eq": f"a{n}"}} for n in range(100)]}
    with pytest.raises(InvalidFilter, match="more than 100 nodes"):
        parse(wide)


def test_versions_sort_semantically() -> None:
    ordered = ["0.9", "1", "1.0.1", "1.2", "1.10", "2.0.0-beta", "10.0"]
    keys = [version_key(v) or 0 for v in ordered]
    assert (
        keys == sorted(keys)
        and len(set(keys)) == len(keys)
        and version_key("1.2.0") == version_key("1.2")
    )
    assert version_key("2.0.0-beta") == version_key("2") and version_key("beta") is None
