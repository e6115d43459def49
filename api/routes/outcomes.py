"""What became of each device of an alert, from the durable outcome record: one device's
outcome, every outcome (keyset pages, or NDJSON streamed whole), and the alert's report."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import StreamingResponse

from pushfan import alerts, outcome_query, outcome_report, outcome_retention, receipts
from pushfan.api import alerting, tenancy
from pushfan.api.deps import ApiResources, Res, require
from pushfan.api.models import INVALID, NOT_FOUND, Problem
from pushfan.api.outcome_models import (
    DeviceOutcomeOut,
    LatencyOut,
    OutcomeName,
    OutcomePage,
    ReportOut,
)
from pushfan.api.routing import GuardedRoute
from pushfan.apikeys import ApiKey

NDJSON = "application/x-ndjson"

router = APIRouter(
    route_class=GuardedRoute, prefix="/v1/alerts", tags=["outcomes"], responses=INVALID
)

GONE = {
    **NOT_FOUND,
    410: {"model": Problem, "description": "the alert's outcomes are past retention"},
}
Reader = Annotated[ApiKey, Depends(require("alerts:send"))]


async def _alert(res: ApiResources, key: ApiKey, alert_id: str) -> alerts.Alert:
    """The alert if the key may see it (else 404) and its outcomes are kept (else 410)."""
    alert = await alerts.get(res.pool, alert_id)
    if alert is None or not tenancy.visible(key, alert):
        raise HTTPException(404, "no such alert")
    if outcome_retention.expired(alert.finished_at, res.settings.outcome_retention_days):
        raise HTTPException(410, "this alert's outcomes are past retention and were removed")
    return alert


def _out(entry: outcome_query.DeviceOutcome) -> DeviceOutcomeOut:
    return DeviceOutcomeOut.model_validate(entry.doc())


@router.get("/{alert_id}/devices/{device_id}", response_model=DeviceOutcomeOut, responses=GONE)
async def get_device_outcome(
    alert_id: str,
    device_id: Annotated[int, Path(ge=0, le=outcome_query.MAX_DEVICE_ID)],
    res: Res,
    key: Reader,
) -> DeviceOutcomeOut:
    """The device's final outcome for the alert; 404 while it has none (not in the
    audience, or not sent yet)."""
    alert = await _alert(res, key, alert_id)
    found = await outcome_query.lookup(res.pool, uuid.UUID(alert.id), device_id)
    if found is None:
        raise HTTPException(404, "no outcome recorded for this device")
    return _out(found)


@router.get(
    "/{alert_id}/outcomes",
    response_model=OutcomePage,
    responses={
        **GONE,
        200: {
            "description": f"a page, or with `Accept: {NDJSON}` every outcome, one per line",
            "content": {NDJSON: {"schema": {"type": "string"}}},
        },
    },
)
async def list_outcomes(
    alert_id: str,
    request: Request,
    res: Res,
    key: Reader,
    outcome: OutcomeName | None = None,
    cursor: Annotated[str | None, Query(max_length=32, pattern=r"^\d{1,18}\.\d{1,5}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> OutcomePage | StreamingResponse:
    """Outcomes in record order, keyset-paginated by `cursor`; a page may be shorter than
    `limit` before the end (a device recorded twice is listed once). With
    `Accept: application/x-ndjson`, all of them streamed (no cursor, no limit)."""
    alert = await _alert(res, key, alert_id)
    alert_key = uuid.UUID(alert.id)
    if NDJSON in request.headers.get("accept", ""):
        return StreamingResponse(_ndjson(res, alert_key, outcome), media_type=NDJSON)
    after = outcome_query.Cursor.parse(cursor) if cursor else None
    items, following = await outcome_query.page(res.pool, alert_key, outcome, after, limit)
    return OutcomePage(
        items=[_out(e) for e in items],
        next_cursor=following.token() if following else None,
    )


async def _ndjson(
    res: ApiResources, alert_id: uuid.UUID, outcome: str | None
) -> AsyncIterator[bytes]:
    """The stream's body: lines gathered into chunks of about 64 KiB."""
    async with res.pool.acquire() as conn, conn.transaction(readonly=True):
        chunk = bytearray()
        async for entry in outcome_query.stream(conn, alert_id, outcome):
            chunk += orjson.dumps(entry.doc(), option=orjson.OPT_APPEND_NEWLINE)
            if len(chunk) >= 65_536:
                yield bytes(chunk)
                chunk.clear()
        if chunk:
            yield bytes(chunk)


@router.get("/{alert_id}/report", response_model=ReportOut, responses=GONE)
async def get_report(alert_id: str, res: Res, key: Reader) -> ReportOut:
    """Counts, outcomes per provider and app, reasons, first and last record times, and
    trigger-to-provider latency percentiles."""
    alert = await _alert(res, key, alert_id)
    async with res.pool.acquire() as conn, conn.transaction(readonly=True):
        report = await outcome_report.build(conn, uuid.UUID(alert.id), alert.created_at)
        reported = await receipts.counts(conn, uuid.UUID(alert.id))
    doc = report.doc()
    current = await alerting.current(res, alert)
    delivered = current.counts.delivered
    return ReportOut(
        alert=current,
        receipts=reported,
        confirmed_delivery_rate=round(reported["confirmed"] / delivered, 4) if delivered else None,
        open_rate=round(reported["opened"] / delivered, 4) if delivered else None,
        recorded=doc["recorded"],
        by_provider=doc["by_provider"],
        by_app=doc["by_app"],
        reasons=doc["reasons"],
        first_recorded_at=doc["first_recorded_at"],
        last_recorded_at=doc["last_recorded_at"],
        latency_ms=LatencyOut(**doc["latency_ms"]),
    )
