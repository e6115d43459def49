"""The segment language at scale: EXPLAIN plans, estimate latency, estimate == expansion.

Seeds a private schema with N devices (default 10^6) that carry versions, attributes,
locales and last_seen spread over 120 days, then for five representative segments (and a
10^5-user audience) prints:
- the EXPLAIN plan of a shard query (the expander's keyset page in a middle shard) and of
  the estimate (the count over the whole table),
- the estimate's p50/p99 over --runs calls (registry.count_audience, what the dashboard
  calls) and the p99 of the preview's breakdown per provider, app and locale,
- the estimate and the number of devices the expansion's keyset pages yield over every
  shard (registry.stream_targets, what the expander calls), which must be equal.

    python loadtest/segments_bench.py [--devices 1000000] [--runs 30] [--keep] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson

from pushfan import apikeys, db, preview, registry, topology, user_lists
from pushfan.api.app import create_app
from pushfan.audience_sql import condition, without_exclusions
from pushfan.messages import AudienceFilter
from pushfan.seed import LOCALES, TAGS, ZONES, apns_token, fcm_token, print_progress
from pushfan.settings import AppConfig, Settings
from pushfan.versions import version_key

APP_VERSIONS = ("4.9", "5.0", "5.1", "5.2", "5.2.1", "5.3", "6.0")
OS_VERSIONS = ("15.7", "16.6", "17.4", "12", "13", "14")
PLANS = ("free",) * 94 + ("pro",) * 5 + ("team",)
COLUMNS = (
    "platform", "app", "token", "user_id", "tags", "locale", "time_zone", "app_version",
    "app_version_key", "os_version", "os_version_key", "attributes", "last_seen",
)  # fmt: skip
SHARD = 50_000
PAGE = 5_000
BENCH_ALERT = "00000000-0000-4000-8000-000000000017"  # the stored list's alert id
BENCH_LIST = user_lists.alert_list_id(BENCH_ALERT, "user_ids")


def _rows(start: int, count: int, now: datetime, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    for n in range(start, start + count):
        ios = n % 2 == 0
        tags = [TAGS[n % len(TAGS)], TAGS[(n // 7) % len(TAGS)]]
        if n % 1000 == 0:
            tags.append("vip")
        app_version = APP_VERSIONS[rng.randrange(len(APP_VERSIONS))]
        os_version = OS_VERSIONS[rng.randrange(3) + (0 if ios else 3)]
        attributes = {"plan": PLANS[rng.randrange(100)], "age": rng.randrange(18, 80)}
        if rng.random() < 0.02:
            attributes["beta"] = True
        yield (
            "ios" if ios else "android",
            ("alpha", "beta")[(n // 2) % 2],
            apns_token() if ios else fcm_token(),
            f"user-{n}",
            tags,
            LOCALES[n % len(LOCALES)],
            ZONES[n % len(ZONES)],
            app_version,
            version_key(app_version),
            os_version,
            version_key(os_version),
            orjson.dumps(attributes).decode(),
            now - timedelta(seconds=rng.randrange(120 * 86_400)),
        )


async def seed(conn: asyncpg.Connection, count: int) -> None:
    rng = random.Random(17)
    now = datetime.now(UTC)
    done = 0
    while done < count:
        n = min(50_000, count - done)
        records = _rows(done, n, now, rng)
        await conn.copy_records_to_table("devices", records=records, columns=COLUMNS)
        done += n
        print_progress(done, count)
    await conn.execute("VACUUM ANALYZE devices")


def segments(devices: int) -> dict[str, AudienceFilter]:
    users = [f"user-{n}" for n in range(0, devices, max(1, devices // 1_000))][:1_000]
    many = [f"user-{n}" for n in range(0, devices, max(1, devices // 100_000))][:100_000]
    return {
        "ios_5.2+_fr_de_seen_30d": AudienceFilter(
            filter={
                "and": [
                    {"platform": {"eq": "ios"}},
                    {"app_version": {"gte": "5.2"}},
                    {"locale": {"language": ["fr", "de"]}},
                    {"last_seen": {"within": "30d"}},
                ]
            }
        ),
        "rare_tag_vip": AudienceFilter(filter={"tags": {"has": "vip"}}),
        "attribute_plan_team": AudienceFilter(filter={"attributes.plan": {"eq": "team"}}),
        "user_id_in_1000": AudienceFilter(filter={"user_id": {"in": users}}),
        "android_not_en_minus_1000_users": AudienceFilter(
            filter={
                "and": [
                    {"platform": {"eq": "android"}},
                    {"not": {"locale": {"language": "en"}}},
                ]
            },
            exclude_user_ids=users,
        ),
        "audience_user_ids_100000": AudienceFilter(user_ids=many),
        "user_list_100000": AudienceFilter(user_list=BENCH_LIST),
    }


async def store_list(pool: asyncpg.Pool, devices: int) -> None:
    """The 100,000 users of `audience_user_ids_100000` as a stored list (pushfan.user_lists),
    as an alert's inline user ids are stored when it is queued (once: a rerun finds it)."""
    many = segments(devices)["audience_user_ids_100000"].user_ids
    await user_lists.store_for_alert(pool, BENCH_ALERT, "bench", "user_ids", many)
    await pool.execute("ANALYZE user_list_members")  # what autovacuum does soon after


async def explain(conn: asyncpg.Connection, sql: str, params: list[Any]) -> list[str]:
    rows = await conn.fetch(f"EXPLAIN {sql}", *params)
    return [r[0] if len(r[0]) <= 240 else r[0][:237] + "..." for r in rows]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(
    pool: asyncpg.Pool, name: str, audience: AudienceFilter, runs: int, span: tuple[int, int]
) -> dict[str, Any]:
    audience = AudienceFilter(**{**_fields(audience), "as_of": time.time()})
    lo, hi = span
    mid = lo + ((hi - lo) // SHARD // 2) * SHARD
    where, params = condition(audience, 4)
    shard_sql = (
        "SELECT id, platform, app, token FROM devices "
        f"WHERE active AND id >= $1 AND id < $2{where} ORDER BY id LIMIT $3"
    )
    count_where, count_params = condition(audience, 1)
    async with pool.acquire() as conn:
        shard_plan = await explain(conn, shard_sql, [mid, mid + SHARD, PAGE, *params])
        count_plan = await explain(
            conn, f"SELECT count(*) FROM devices WHERE active{count_where}", count_params
        )
    timings, breakdown_ms, single_ms = [], [], []
    estimate = by_total = 0
    for _ in range(runs):
        started = time.perf_counter()
        estimate = await registry.count_audience(pool, audience)
        timings.append((time.perf_counter() - started) * 1000)
        if without_exclusions(audience) is not None:
            # The baseline, alternated with it: the exclusions tested on every row.
            started = time.perf_counter()
            single = await pool.fetchval(
                f"SELECT count(*) FROM devices WHERE active{count_where}", *count_params
            )
            single_ms.append((time.perf_counter() - started) * 1000)
            assert single == estimate
        started = time.perf_counter()
        by_total = sum(b.devices for b in await preview.breakdown(pool, audience))
        breakdown_ms.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    expanded = 0
    for shard_lo in range(lo, hi, SHARD):
        async for page in registry.stream_targets(
            pool, shard_lo, min(hi, shard_lo + SHARD), audience, PAGE
        ):
            expanded += len(page)
    expand_s = time.perf_counter() - started
    return {
        "segment": name,
        "estimate": estimate,
        "expanded": expanded,
        "equal": estimate == expanded == by_total,
        "estimate_p50_ms": round(percentile(timings, 0.5), 1),
        "estimate_p99_ms": round(percentile(timings, 0.99), 1),
        "preview_breakdown_p99_ms": round(percentile(breakdown_ms, 0.99), 1),
        "single_statement_p50_ms": round(percentile(single_ms, 0.5), 1) if single_ms else None,
        "single_statement_p99_ms": round(percentile(single_ms, 0.99), 1) if single_ms else None,
        "expand_all_shards_s": round(expand_s, 2),
        "shard_plan": shard_plan,
        "estimate_plan": count_plan,
    }


async def preview_route(settings: Settings, runs: int) -> dict[str, Any]:
    """POST /v1/alerts:preview in process for the issue's example segment, without the
    provider calls (?credentials=false): the whole dry run, p50/p99 of its response time."""
    app = create_app(
        settings.model_copy(update={"apps": [AppConfig(name="alpha"), AppConfig(name="beta")]})
    )
    conn = await db.connect(settings)
    try:
        _, key = await apikeys.create(conn, "segments-bench", ["alerts:send"])
    finally:
        await conn.close()
    body = {
        "title": "t",
        "body": "b",
        "audience": {"filter": segments(0)["ios_5.2+_fr_de_seen_30d"].filter},
    }
    timings: list[float] = []
    answer: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            for _ in range(runs):
                started = time.perf_counter()
                response = await client.post(
                    "/v1/alerts:preview?credentials=false",
                    json=body,
                    headers={"authorization": f"Bearer {key}"},
                )
                timings.append((time.perf_counter() - started) * 1000)
                answer = response.json()
    connection = await topology.connect(settings)
    try:
        await topology.delete_all(await connection.channel(), settings)
    finally:
        await connection.close()
    return {
        "segment": "preview route, ios_5.2+_fr_de_seen_30d",
        "audience": answer.get("audience"),
        "seconds": answer.get("seconds"),
        "p50_ms": round(percentile(timings, 0.5), 1),
        "p99_ms": round(percentile(timings, 0.99), 1),
    }


def _fields(audience: AudienceFilter) -> dict[str, Any]:
    return {f: getattr(audience, f) for f in audience.__struct_fields__}


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    name = args.schema or f"segbench_{secrets.token_hex(3)}"
    settings = Settings(
        database_schema=name, queue_prefix=name, redis_prefix=f"{name}:", queue_type="classic"
    )
    await db.migrate(settings)
    conn = await db.connect(settings)
    try:
        if not await conn.fetchval("SELECT count(*) FROM devices"):
            await seed(conn, args.devices)
    finally:
        await conn.close()
    pool = await db.create_pool(settings, max_size=2)
    try:
        await store_list(pool, args.devices)
        span = await registry.id_range(pool)
        assert span is not None
        results = [
            await measure(pool, segment, audience, args.runs, span)
            for segment, audience in segments(args.devices).items()
            if not args.only or segment in args.only
        ]
        if args.preview:
            print(json.dumps(await preview_route(settings, args.runs)))
    finally:
        await pool.close()
        if not args.keep:
            await db.drop_schema(settings)
        else:
            print(f"kept schema {name}", file=sys.stderr)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--schema", help="reuse (or create) this schema instead of a new one")
    parser.add_argument("--keep", action="store_true", help="keep the schema for another run")
    parser.add_argument("--only", nargs="+", help="measure only these segments")
    parser.add_argument("--preview", action="store_true", help="also time POST /v1/alerts:preview")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    for r in results:
        print(
            f"\n== {r['segment']}: estimate {r['estimate']:,} expanded {r['expanded']:,} "
            f"equal={r['equal']} p50 {r['estimate_p50_ms']} ms p99 {r['estimate_p99_ms']} ms "
            f"(breakdown p99 {r['preview_breakdown_p99_ms']} ms) "
            f"(exclusions tested per row, alternated: p50 {r['single_statement_p50_ms']} ms "
            f"p99 {r['single_statement_p99_ms']} ms) "
            f"(expansion of all shards {r['expand_all_shards_s']} s)"
        )
        print("  shard query plan:")
        print("\n".join(f"    {line}" for line in r["shard_plan"]))
        print("  estimate plan:")
        print("\n".join(f"    {line}" for line in r["estimate_plan"]))
    if args.json:
        print(json.dumps([{k: v for k, v in r.items() if "plan" not in k} for r in results]))
    return 0 if all(r["equal"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
