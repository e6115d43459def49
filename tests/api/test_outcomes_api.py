"""The outcome routes: one device, pages, the NDJSON export, the report, retention (410)."""

from __future__ import annotations

import httpx
import orjson

from pushfan import outcome_record
from pushfan.db import Pool
from pushfan.outcome_reasons import reason_args
from pushfan.outcomes import Outcome
from pushfan.progress import outcome_args

ALERT = {"title": "t", "body": "b"}


async def _alert(api: httpx.AsyncClient, key: dict[str, str], pool: Pool) -> str:
    response = await api.post("/v1/alerts", json=ALERT, headers=key)
    assert response.status_code == 202, response.text
    alert = str(response.json()["id"])
    for n in range(3):
        ids = list(range(n * 100, n * 100 + 100))
        outcomes = {Outcome.DELIVERED: ids[:90], Outcome.INVALID: ids[90:]}
        sizes, packed = outcome_args(outcomes)
        reasons = reason_args(outcomes, dict.fromkeys(ids[90:], "Unregistered"))
        await outcome_record.write_outcomes(
            pool, alert, f"{alert}:0:apns:alpha:{n}", 0, sizes, packed, reasons=reasons
        )
    return alert


async def test_the_export_streams_every_outcome_as_ndjson(
    api: httpx.AsyncClient, sender_key: dict[str, str], pool: Pool
) -> None:
    alert = await _alert(api, sender_key, pool)
    headers = {**sender_key, "accept": "application/x-ndjson"}
    response = await api.get(f"/v1/alerts/{alert}/outcomes?outcome=invalid", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in response.content.splitlines()]
    assert len(lines) == 30 and {line["reason"] for line in lines} == {"Unregistered"}


async def test_pages_and_device_lookup(
    api: httpx.AsyncClient, sender_key: dict[str, str], pool: Pool
) -> None:
    alert = await _alert(api, sender_key, pool)
    seen, cursor = [], None
    while True:
        query = f"?limit=70&cursor={cursor}" if cursor else "?limit=70"
        body = (await api.get(f"/v1/alerts/{alert}/outcomes{query}", headers=sender_key)).json()
        seen += [i["device_id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(range(300))
    one = (await api.get(f"/v1/alerts/{alert}/devices/195", headers=sender_key)).json()
    assert (one["outcome"], one["reason"], one["provider"], one["app"]) == (
        "invalid",
        "Unregistered",
        "apns",
        "alpha",
    )
    missing = await api.get(f"/v1/alerts/{alert}/devices/5000", headers=sender_key)
    assert missing.status_code == 404


async def test_bad_input_is_a_cheap_4xx(
    api: httpx.AsyncClient, sender_key: dict[str, str], pool: Pool
) -> None:
    alert = await _alert(api, sender_key, pool)
    for url in (
        f"/v1/alerts/{alert}/outcomes?cursor=abc",
        f"/v1/alerts/{alert}/outcomes?outcome=retried",
        f"/v1/alerts/{alert}/outcomes?limit=0",
        f"/v1/alerts/{alert}/devices/{2**32}",
        f"/v1/alerts/{alert}/devices/-1",
    ):
        assert (await api.get(url, headers=sender_key)).status_code == 422, url
    unknown = "/v1/alerts/not-a-uuid/report"
    assert (await api.get(unknown, headers=sender_key)).status_code == 404


async def test_the_report_counts_per_app_and_reason(
    api: httpx.AsyncClient, sender_key: dict[str, str], pool: Pool
) -> None:
    alert = await _alert(api, sender_key, pool)
    report = (await api.get(f"/v1/alerts/{alert}/report", headers=sender_key)).json()
    assert report["alert"]["id"] == alert and report["recorded"] == 300
    assert report["by_app"] == {"alpha": {"delivered": 270, "invalid": 30}}
    assert report["reasons"] == {"invalid": {"Unregistered": 30}}
    assert report["latency_ms"]["p50"] is not None


async def test_outcomes_past_retention_answer_410(
    api: httpx.AsyncClient, sender_key: dict[str, str], pool: Pool
) -> None:
    alert = await _alert(api, sender_key, pool)
    await pool.execute(
        "UPDATE alerts SET finished_at = now() - interval '31 days' WHERE id = $1::uuid", alert
    )
    for path in ("outcomes", "report", "devices/1"):
        response = await api.get(f"/v1/alerts/{alert}/{path}", headers=sender_key)
        assert response.status_code == 410, path
