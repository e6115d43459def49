"""schemathesis against the OpenAPI schema: no 5xx and every answer as the schema says, with
a key that may do everything, for schema-valid and schema-invalid requests alike, with NUL
characters allowed in every generated string.

`make test` runs a quick pass (QUICK examples per operation and mode); `make fuzz` (in
.ci/run after `make test`) runs FUZZ examples per operation and mode."""

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
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err, Ok
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from loadtest.stack import free_port
from pushfan import apikeys, db
from pushfan.api.app import create_app
from pushfan.settings import AppConfig, Settings

QUICK = 25
FUZZ = 300
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


@pytest.mark.parametrize(
    "examples",
    [
        pytest.param(QUICK, id="quick"),
        pytest.param(FUZZ, id="fuzz", marks=[pytest.mark.fuzz, pytest.mark.timeout(1800)]),
    ],
)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_5xx_and_answers_match_the_schema(
    served: tuple[str, str], mode: GenerationMode, examples: int
) -> None:
    url, key = served
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    # The bearer scheme is declared; the key sent is ours, so no Authorization is generated.
    schema.config.generation.update(with_security_parameters=False)
    schema.config.generation.update(allow_x00=True)
    assert schema.config.generation.allow_x00
    headers = {"authorization": f"Bearer {key}"}
    results = list(schema.get_all_operations())
    assert not [r for r in results if isinstance(r, Err)], "the OpenAPI schema has errors"
    operations = [r.ok() for r in results if isinstance(r, Ok)]
    assert len(operations) >= 6
    no_invalid_form: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis_settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            # Schema-valid bodies may still be refused (unknown app, token format, payload
            # size): those are 422s by design, so positive-data acceptance is not checked.
            case.call_and_validate(headers=headers, checks=CHECKS, excluded_checks=EXCLUDED)

        try:
            check()
        except Unsatisfiable:
            # Negative mode finds nothing to break where every value is valid (GET /healthz,
            # a path id of any string); every operation has positive cases.
            if mode is GenerationMode.POSITIVE:
                raise
            no_invalid_form.append(operation.label)
    bodies = {"POST /v1/devices", "POST /v1/alerts", "POST /v1/notifications"}
    assert bodies.isdisjoint(no_invalid_form), no_invalid_form
