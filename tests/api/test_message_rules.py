"""The invalid combinations documented in docs/messages.md: each one is a 422 that says why,
and nothing is queued for any of them. The table in the docs is the test's input, so the
documentation cannot drift from what the API answers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import orjson
import pytest

from pushfan.api.examples import ALERT_ONLY, MESSAGES, SCHEDULED
from pushfan.api.models import AlertCreate, NotificationCreate
from pushfan.db import Pool
from pushfan.settings import Settings
from tests.fixtures.api import bearer, queued

DOC = Path(__file__).resolve().parents[2] / "docs" / "messages.md"
_ROW = re.compile(r"^\| (\d+) \| `(.+)` \| (.+) \|$")
_REPEAT = re.compile(r'"(\w)"×(\d+)')


def invalid_rows() -> list[tuple[int, dict[str, Any], str]]:
    text = DOC.read_text()
    table = text.split("<!-- invalid:start -->", 1)[1].split("<!-- invalid:end -->", 1)[0]
    rows = []
    for line in table.splitlines():
        match = _ROW.match(line)
        if match:
            body = _REPEAT.sub(lambda m: '"' + m.group(1) * int(m.group(2)) + '"', match[2])
            rows.append((int(match[1]), orjson.loads(body), match[3]))
    return rows


ROWS = invalid_rows()


def test_the_table_lists_at_least_15_combinations_numbered_in_order() -> None:
    assert len(ROWS) >= 15
    assert [n for n, _, _ in ROWS] == list(range(1, len(ROWS) + 1))


@pytest.mark.parametrize(("number", "body", "says"), ROWS, ids=[str(r[0]) for r in ROWS])
async def test_each_invalid_combination_is_a_422_that_says_why_and_queues_nothing(
    api: httpx.AsyncClient,
    pool: Pool,
    channel: aio_pika.abc.AbstractChannel,
    settings: Settings,
    number: int,
    body: dict[str, Any],
    says: str,
) -> None:
    headers = await bearer(pool, "alerts:send")
    response = await api.post("/v1/alerts", json=body, headers=headers)
    assert response.status_code == 422, (number, response.text[:300])
    assert says in response.text, (number, response.text[:500])
    assert await queued(channel, settings) == 0
    assert await pool.fetchval("SELECT count(*) FROM alerts") == 0


async def test_the_openapi_schema_carries_a_valid_example_of_each_message_kind(
    api: httpx.AsyncClient,
) -> None:
    schema = (await api.get("/openapi.json")).json()
    for path, model in (("/v1/alerts", AlertCreate), ("/v1/notifications", NotificationCreate)):
        content = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        shown = content["examples"]
        only = set(ALERT_ONLY) if path == "/v1/alerts" else set()
        assert set(shown) == set(MESSAGES) | set(SCHEDULED) | only
        for example in shown.values():
            model.model_validate(example["value"])  # each example is a valid request
