"""schemathesis against the OpenAPI schema, with a bounded number of examples per operation:
no 5xx and every answer as the schema says, with a key that may do everything."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err, Ok
from schemathesis.specs.openapi.checks import (
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from loadtest.stack import free_port
from pushfan import apikeys, db
from pushfan.api.app import create_app
from pushfan.settings import AppConfig, Settings

EXAMPLES = 25  # per operation: bounded so `make test` stays quick
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
EXCLUDED = [positive_data_acceptance]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, str]]:
    """The API under uvicorn in a thread, on its own schema and prefixes."""
    name = "fuzz_" + threading.get_ident().to_bytes(8, "little").hex()[:8]
    settings = Settings(
        database_schema=name,
        queue_prefix=name,
        redis_prefix=f"{name}:",
        queue_type="classic",
        trigger_rate_per_s=0,
        write_rate_per_s=0,
        address_rate_per_s=0,
        apps=[AppConfig(name="alpha")],
    )

    async def prepare() -> str:
        await db.migrate(settings)
        pool = await db.create_pool(settings, min_size=1, max_size=1)
        try:
            _, key = await apikeys.create(pool, "fuzz", ["admin"])
        finally:
            await pool.close()
        return key

    key = asyncio.run(prepare())
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.05)
    yield f"http://127.0.0.1:{port}", key
    server.should_exit = True
    thread.join(10)
    asyncio.run(db.drop_schema(settings))


def test_no_5xx_and_answers_match_the_schema(served: tuple[str, str]) -> None:
    url, key = served
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    # The bearer scheme is declared; the key sent is ours, so no Authorization is generated.
    schema.config.generation.update(with_security_parameters=False)
    headers = {"authorization": f"Bearer {key}"}
    results = list(schema.get_all_operations())
    assert not [r for r in results if isinstance(r, Err)], "the OpenAPI schema has errors"
    operations = [r.ok() for r in results if isinstance(r, Ok)]
    assert len(operations) >= 6
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            # Schema-valid bodies may still be refused (unknown app, token format, payload
            # size): those are 422s by design, so positive-data acceptance is not checked.
            case.call_and_validate(headers=headers, checks=CHECKS, excluded_checks=EXCLUDED)

        check()
