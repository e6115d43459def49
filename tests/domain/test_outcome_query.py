"""Per-device outcomes read back from the durable record (pushfan.outcome_query, .outcome_report,
.outcome_retention) against the real PostgreSQL, each test in its own schema."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from pushfan import (
    alerts,
    db,
    follow_up,
    outcome_query,
    outcome_record,
    outcome_report,
    outcome_retention,
)
from pushfan.alerts import AlertIn
from pushfan.messages import AudienceFilter
from pushfan.outcome_reasons import reason_args
from pushfan.outcomes import Outcome
from pushfan.progress import outcome_args

ALERT = AlertIn("t", "b", {}, AudienceFilter(), 3600, "high")


async def _alert(pool: db.Pool) -> uuid.UUID:
    alert, _ = await alerts.create(pool, ALERT, None, "test")
    return uuid.UUID(alert.id)


async def _record(
    pool: db.Pool,
    alert_id: uuid.UUID,
    batch_id: str,
    outcomes: dict[Outcome, list[int]],
    reason_of: dict[int, str] | None = None,
    attempt: int = 0,
) -> None:
    sizes, packed = outcome_args(outcomes)
    await outcome_record.write_outcomes(
        pool,
        str(alert_id),
        f"{alert_id}:{batch_id}",
        attempt,
        sizes,
        packed,
        reasons=reason_args(outcomes, reason_of or {}),
    )


async def test_a_device_outcome_carries_its_reason_attempt_and_batch(pool: db.Pool) -> None:
    alert = await _alert(pool)
    await _record(pool, alert, "0:apns:alpha:0", {Outcome.DELIVERED: [1, 2]})
    await _record(
        pool,
        alert,
        "0:fcm:beta:0",
        {Outcome.DELIVERED: [3], Outcome.INVALID: [4], Outcome.FAILED: [5]},
        {4: "UNREGISTERED", 5: "503"},
        attempt=5,
    )
    found = await outcome_query.lookup(pool, alert, 4)
    assert found is not None
    assert (found.outcome, found.reason, found.attempts) == ("invalid", "UNREGISTERED", 6)
    assert (found.provider, found.app) == ("fcm", "beta")
    failed = await outcome_query.lookup(pool, alert, 5)
    assert failed is not None and (failed.outcome, failed.reason) == ("failed", "503")
    delivered = await outcome_query.lookup(pool, alert, 2)
    assert delivered is not None and (delivered.outcome, delivered.reason) == ("delivered", None)
    assert await outcome_query.lookup(pool, alert, 99) is None


async def test_lookup_ignores_bytes_that_straddle_two_ids(pool: db.Pool) -> None:
    """Ids 0x01000000 and 0x00000002 packed side by side (00 00 00 01 02 00 00 00) hold the
    bytes of id 0x00000201 across their boundary: that id is not in the batch."""
    alert = await _alert(pool)
    await _record(pool, alert, "0:apns:alpha:0", {Outcome.DELIVERED: [0x01000000, 2]})
    assert await outcome_query.lookup(pool, alert, 0x00000201) is None
    assert await outcome_query.lookup(pool, alert, 2) is not None


async def test_the_first_record_of_a_device_wins(pool: db.Pool) -> None:
    """A push sent again after a loss records the device twice; lookup, pages and the
    stream report its first outcome once."""
    alert = await _alert(pool)
    await _record(pool, alert, "0:apns:alpha:0", {Outcome.DELIVERED: [1, 2, 3]})
    await _record(pool, alert, "1:apns:alpha:0", {Outcome.DELIVERED: [60_000]})
    await _record(pool, alert, "0:apns:alpha:0", {Outcome.INVALID: [2]}, {2: "Unregistered"})
    found = await outcome_query.lookup(pool, alert, 2)
    assert found is not None and found.outcome == "delivered"
    items, _ = await outcome_query.page(pool, alert, None, None, 100)
    assert [e.device_id for e in items] == [1, 2, 3, 60_000]
    invalid, _ = await outcome_query.page(pool, alert, "invalid", None, 100)
    assert invalid == []
    async with pool.acquire() as conn, conn.transaction():
        streamed = [e.device_id async for e in outcome_query.stream(conn, alert, None)]
    assert streamed == [1, 2, 3, 60_000]


async def test_pages_follow_the_cursor_to_every_outcome_once(pool: db.Pool) -> None:
    alert = await _alert(pool)
    expected = []
    for n in range(7):
        ids = list(range(n * 10, n * 10 + 10))
        outcomes = {Outcome.DELIVERED: ids[:7], Outcome.INVALID: ids[7:]}
        await _record(pool, alert, f"0:apns:alpha:{n}", outcomes, dict.fromkeys(ids[7:], "Bad"))
        expected += ids
    got: list[int] = []
    after = None
    while True:
        items, after = await outcome_query.page(pool, alert, None, after, 9)
        assert len(items) <= 9
        got += [e.device_id for e in items]
        if after is None:
            break
        assert outcome_query.Cursor.parse(after.token()) == after
    assert got == expected
    invalid, after = await outcome_query.page(pool, alert, "invalid", None, 1000)
    assert after is None
    assert [e.device_id for e in invalid] == [i for i in expected if i % 10 >= 7]
    assert {e.reason for e in invalid} == {"Bad"}


async def test_a_page_reading_past_many_rows_without_its_outcome(pool: db.Pool) -> None:
    """More rows than one round trip reads (PAGE_ROWS), the only failure in the last one."""
    alert = await _alert(pool)
    rows = outcome_query.PAGE_ROWS + 5
    for n in range(rows):
        await _record(pool, alert, f"0:fcm:beta:{n}", {Outcome.DELIVERED: [n * 2]})
    await _record(pool, alert, "0:fcm:beta:x", {Outcome.FAILED: [9_999]}, {9_999: "500"})
    failed, after = await outcome_query.page(pool, alert, "failed", None, 10)
    assert [e.device_id for e in failed] == [9_999] and after is None


async def test_the_stream_filters_by_outcome(pool: db.Pool) -> None:
    alert = await _alert(pool)
    await _record(pool, alert, "0:apns:alpha:0", {Outcome.DELIVERED: [5], Outcome.INVALID: [6]})
    await _record(pool, alert, "0:cancelled", {Outcome.CANCELLED: [7, 8]})
    async with pool.acquire() as conn, conn.transaction():
        got = [
            (e.device_id, e.provider) async for e in outcome_query.stream(conn, alert, "cancelled")
        ]
    assert got == [(7, None), (8, None)]


async def test_the_report_breaks_outcomes_down(pool: db.Pool) -> None:
    alert = await _alert(pool)
    created = (await alerts.get(pool, str(alert))).created_at  # type: ignore[union-attr]
    await _record(pool, alert, "0:apns:alpha:0", {Outcome.DELIVERED: [1, 2, 3]})
    await _record(
        pool,
        alert,
        "0:fcm:beta:0",
        {Outcome.DELIVERED: [4], Outcome.INVALID: [5, 6], Outcome.FAILED: [7]},
        {5: "UNREGISTERED", 6: "UNREGISTERED", 7: "INVALID_ARGUMENT"},
    )
    await _record(pool, alert, "0:expired", {Outcome.EXPIRED: [8]})
    async with pool.acquire() as conn, conn.transaction():
        report = (await outcome_report.build(conn, alert, created)).doc()
    assert report["recorded"] == 8
    assert report["by_provider"] == {
        "-": {"expired": 1},
        "apns": {"delivered": 3},
        "fcm": {"delivered": 1, "invalid": 2, "failed": 1},
    }
    assert report["by_app"]["beta"] == {"delivered": 1, "invalid": 2, "failed": 1}
    assert report["reasons"] == {
        "failed": {"INVALID_ARGUMENT": 1},
        "invalid": {"UNREGISTERED": 2},
    }
    assert report["latency_ms"]["p50"] is not None and report["latency_ms"]["p50"] >= 0


def test_latency_percentiles_weigh_each_batch_by_its_pushes() -> None:
    weighted = [(10.0, 98), (500.0, 1), (900.0, 1)]
    assert outcome_report.latency_percentiles(weighted) == {"p50": 10.0, "p99": 500.0, "max": 900.0}
    assert outcome_report.latency_percentiles([])["p99"] is None


def test_reason_args_cost_nothing_without_reasons() -> None:
    assert reason_args({Outcome.DELIVERED: [1, 2]}, {}) == (None, None)
    codes, names = reason_args({Outcome.DELIVERED: [1], Outcome.INVALID: [2]}, {2: "Gone"})
    assert codes == bytes([0, 1]) and names == ["Gone"]


async def test_retention_deletes_in_batches_only_alerts_finished_long_ago(pool: db.Pool) -> None:
    old, recent, running = await _alert(pool), await _alert(pool), await _alert(pool)
    for alert in (old, recent, running):
        for n in range(5):
            await _record(pool, alert, f"0:apns:alpha:{n}", {Outcome.DELIVERED: [n]})
    await pool.execute(
        "UPDATE alerts SET finished_at = now() - interval '40 days' WHERE id = $1", old
    )
    await pool.execute("UPDATE alerts SET finished_at = now() WHERE id = $1", recent)
    assert await follow_up.materialise(pool, str(old)) == 5
    assert await outcome_retention.prune(pool, 30, batch=2) == 5
    assert await pool.fetchval("SELECT count(*) FROM delivered_sets") == 0
    assert await pool.fetchval("SELECT count(*) FROM delivered_set_sizes") == 0
    left = await pool.fetch("SELECT alert_id, count(*) AS n FROM outcome_batches GROUP BY alert_id")
    assert {r["alert_id"]: r["n"] for r in left} == {recent: 5, running: 5}
    assert await outcome_retention.prune(pool, 0) == 0


def test_retention_says_which_alerts_are_past_it() -> None:
    now = datetime.now(UTC)
    assert outcome_retention.expired(now - timedelta(days=31), 30, now)
    assert not outcome_retention.expired(now - timedelta(days=29), 30, now)
    assert not outcome_retention.expired(None, 30, now)
    assert not outcome_retention.expired(now - timedelta(days=999), 0, now)
