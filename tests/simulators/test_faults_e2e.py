"""Simulators with faults switched on: answers and statistics match what the seed dictates."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from loadtest.credentials import ApnsCredentials, FcmCredentials
from loadtest.simulators.faults import FaultConfig, Faults
from tests.fixtures.simulators import (
    PROJECT,
    Simulator,
    access_token,
    apns_argv,
    fcm_argv,
    provider_token,
)

BODY = json.dumps({"aps": {"alert": "hi"}}).encode()
FAULTS = ["--seed", "7", "--dead-fraction", "0.3", "--error-fraction", "0.2"]
APNS_REASONS = {500: "InternalServerError", 503: "ServiceUnavailable"}


def device(i: int) -> str:
    return f"{i:064x}"


def fcm_token(i: int) -> str:
    return f"dev{i:08d}:APA91b" + "D" * 146


def expected_apns(count: int) -> list[int]:
    """What a seed-7 simulator answers to `count` valid pushes sent one after another."""
    faults = Faults(FaultConfig(seed=7, dead_fraction=0.3, error_fraction=0.2))
    statuses = []
    for i in range(count):
        status = faults.injected_error()
        statuses.append(status or (410 if faults.dead(device(i)) else 200))
    return statuses


async def test_apns_dead_tokens_and_errors_follow_the_seed(
    simulators: Callable[..., Simulator], apns_creds: ApnsCredentials
) -> None:
    apns = simulators(apns_argv(apns_creds, *FAULTS))
    headers = {"authorization": f"bearer {provider_token(apns_creds)}", "apns-topic": "t"}
    headers["apns-collapse-id"] = "faulty"
    async with apns.client() as http:
        answers = [
            await http.post(f"/3/device/{device(i)}", content=BODY, headers=headers)
            for i in range(200)
        ]
    expected = expected_apns(200)
    assert [answer.status_code for answer in answers] == expected
    gone = next(answer for answer in answers if answer.status_code == 410)
    assert gone.json()["reason"] == "Unregistered"
    assert isinstance(gone.json()["timestamp"], int)
    counts = Counter(expected)
    stats = apns.stats()
    assert stats["accepted"] == counts[200] == stats["by_collapse_id"]["faulty"]["distinct"]
    assert stats["rejected"] == {
        "Unregistered": counts[410],
        "InternalServerError": counts[500],
        "ServiceUnavailable": counts[503],
    }
    assert stats["duplicates"] == 0
    assert sum(row[1] for row in stats["per_second"]) == counts[200]


async def test_fcm_dead_tokens_errors_and_quota_follow_the_seed(
    simulators: Callable[..., Simulator], fcm_creds: FcmCredentials
) -> None:
    fcm = simulators(fcm_argv(fcm_creds, *FAULTS, "--quota-per-minute", "150"))
    faults = Faults(FaultConfig(seed=7, dead_fraction=0.3, error_fraction=0.2))
    expected = []
    for i in range(200):
        status = 429 if i >= 150 else faults.injected_error()
        expected.append(status or (404 if faults.dead(fcm_token(i)) else 200))
    async with fcm.client() as http:
        bearer = {"authorization": f"Bearer {await access_token(http, fcm_creds)}"}
        answers = []
        for i in range(200):
            body = {"message": {"token": fcm_token(i), "android": {"collapse_key": "q"}}}
            answers.append(
                await http.post(f"/v1/projects/{PROJECT}/messages:send", json=body, headers=bearer)
            )
    assert [answer.status_code for answer in answers] == expected
    codes = {
        a.status_code: a.json()["error"]["details"][0]["errorCode"]
        for a in answers
        if a.status_code != 200
    }
    assert codes == {
        404: "UNREGISTERED",
        429: "QUOTA_EXCEEDED",
        500: "INTERNAL",
        503: "UNAVAILABLE",
    }
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 60
    counts = Counter(expected)
    stats = fcm.stats(collapse_id="q")
    assert stats["accepted"] == counts[200]
    assert stats["rejected"] == {
        "UNREGISTERED": counts[404],
        "QUOTA_EXCEEDED": counts[429],
        "INTERNAL": counts[500],
        "UNAVAILABLE": counts[503],
    }


async def test_reset_clears_the_statistics(
    simulators: Callable[..., Simulator], apns_creds: ApnsCredentials
) -> None:
    apns = simulators(apns_argv(apns_creds, "--h2c"))
    headers = {"authorization": f"bearer {provider_token(apns_creds)}", "apns-topic": "t"}
    async with apns.client() as http:
        await http.post(f"/3/device/{device(1)}", content=BODY, headers=headers)
        assert (await http.post("/_sim/reset")).json() == {"reset": True}
    stats = apns.stats()
    assert (stats["accepted"], stats["rejected"], stats["first_accepted_at"]) == (0, {}, None)


async def test_apns_rate_limit_answers_429(
    simulators: Callable[..., Simulator], apns_creds: ApnsCredentials
) -> None:
    """Given 20 requests/s allowed, a burst of 100 gets some TooManyRequests."""
    apns = simulators(apns_argv(apns_creds, "--h2c", "--rate-limit", "20"))
    headers = {"authorization": f"bearer {provider_token(apns_creds)}", "apns-topic": "t"}
    async with apns.client() as http:
        answers = await asyncio.gather(
            *(
                http.post(f"/3/device/{device(i)}", content=BODY, headers=headers)
                for i in range(100)
            )
        )
    limited = [a for a in answers if a.status_code == 429]
    assert limited and limited[0].json() == {"reason": "TooManyRequests"}
    stats = apns.stats()
    assert 20 <= stats["accepted"] < 100
    assert stats["accepted"] + stats["rejected"]["TooManyRequests"] == 100


async def test_latency_is_added(
    simulators: Callable[..., Simulator], apns_creds: ApnsCredentials
) -> None:
    apns = simulators(
        apns_argv(apns_creds, "--h2c", "--latency-ms", "150", "--latency-jitter-ms", "20")
    )
    headers = {"authorization": f"bearer {provider_token(apns_creds)}", "apns-topic": "t"}
    async with apns.client() as http:
        started = time.monotonic()
        answer = await http.post(f"/3/device/{device(1)}", content=BODY, headers=headers)
    assert answer.status_code == 200
    assert time.monotonic() - started >= 0.13


@pytest.mark.parametrize("transport", [["--h2c"], []], ids=["h2c", "tls"])
async def test_every_fifth_request_loses_its_connection(
    simulators: Callable[..., Simulator], apns_creds: ApnsCredentials, transport: list[str]
) -> None:
    """Sequential requests: the 5th and 10th are cut off; the client reconnects for the rest."""
    apns = simulators(apns_argv(apns_creds, *transport, "--drop-connection-every", "5"))
    headers = {"authorization": f"bearer {provider_token(apns_creds)}", "apns-topic": "t"}
    outcomes = []
    async with apns.client() as http:
        for i in range(12):
            try:
                answer = await http.post(f"/3/device/{device(i)}", content=BODY, headers=headers)
                outcomes.append(answer.status_code)
            except httpx.TransportError:
                outcomes.append(0)
    assert outcomes == [200] * 4 + [0] + [200] * 4 + [0] + [200] * 2
    assert apns.stats()["accepted"] == 10


async def test_a_drop_loses_requests_in_flight(
    simulators: Callable[..., Simulator], apns_creds: ApnsCredentials
) -> None:
    """Concurrent requests on one connection: those in flight at the drop fail, and some of
    them may have been delivered though their answers were lost."""
    apns = simulators(apns_argv(apns_creds, "--h2c", "--drop-connection-every", "10"))
    headers = {"authorization": f"bearer {provider_token(apns_creds)}", "apns-topic": "t"}
    async with apns.client() as http:
        answers = await asyncio.gather(
            *(
                http.post(f"/3/device/{device(i)}", content=BODY, headers=headers)
                for i in range(20)
            ),
            return_exceptions=True,
        )
    failed = [a for a in answers if isinstance(a, httpx.TransportError)]
    succeeded = [a for a in answers if isinstance(a, httpx.Response) and a.status_code == 200]
    assert failed and len(failed) + len(succeeded) == 20
    assert apns.stats()["accepted"] >= len(succeeded)
