"""The FCM simulator, started as a process, driven over TLS by httpx: OAuth and messages:send."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from loadtest.credentials import FcmCredentials
from loadtest.simulators.fcm import FCM_ERROR
from loadtest.simulators.oauth import GRANT_TYPE
from tests.fixtures.simulators import PROJECT, Simulator, access_token, assertion, fcm_argv

TOKEN = "cZ1ohKJ3TxA:APA91b" + "B" * 146
SEND = f"/v1/projects/{PROJECT}/messages:send"


def message(token: str = TOKEN, collapse_key: str = "alert-1", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "token": token,
        "notification": {"title": "Hi", "body": "there"},
        "android": {"collapse_key": collapse_key, "priority": "high"},
        "apns": {"headers": {"apns-collapse-id": collapse_key}},
        "data": {"alert_id": collapse_key},
    }
    body.update(extra)
    return body


@pytest.fixture(scope="module")
def fcm(simulators: Callable[..., Simulator], fcm_creds: FcmCredentials) -> Simulator:
    return simulators(fcm_argv(fcm_creds))


async def send(
    http: httpx.AsyncClient, bearer: str | None, body: Any, path: str = SEND
) -> httpx.Response:
    headers = {"authorization": f"Bearer {bearer}"} if bearer else {}
    return await http.post(path, json=body, headers=headers)


def fcm_error(answer: httpx.Response) -> tuple[int, str, str | None]:
    error = answer.json()["error"]
    details = error.get("details") or [{}]
    assert error["code"] == answer.status_code
    if details[0]:
        assert details[0]["@type"] == FCM_ERROR
    return error["code"], error["status"], details[0].get("errorCode")


async def test_token_endpoint_issues_bearer_tokens(
    fcm: Simulator, fcm_creds: FcmCredentials
) -> None:
    async with fcm.client() as http:
        grant = {"grant_type": GRANT_TYPE, "assertion": assertion(fcm_creds, f"{fcm.url}/token")}
        answer = await http.post("/token", data=grant)
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert isinstance(body["access_token"], str) and len(body["access_token"]) > 20


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"scope": "https://www.googleapis.com/auth/userinfo.email"}, "invalid_scope"),
        ({"aud": "https://example.test/token"}, "invalid_grant"),
        ({"iss": "nobody@else.iam.gserviceaccount.com"}, "invalid_grant"),
    ],
)
async def test_token_endpoint_refuses_bad_assertions(
    fcm: Simulator, fcm_creds: FcmCredentials, overrides: dict[str, Any], error: str
) -> None:
    claims = {"aud": f"{fcm.url}/token", **overrides}
    aud = claims.pop("aud")
    async with fcm.client() as http:
        grant = {"grant_type": GRANT_TYPE, "assertion": assertion(fcm_creds, aud, **claims)}
        answer = await http.post("/token", data=grant)
    assert (answer.status_code, answer.json()["error"]) == (400, error)


async def test_google_token_uri_is_an_accepted_audience(
    fcm: Simulator, fcm_creds: FcmCredentials
) -> None:
    async with fcm.client() as http:
        grant = {
            "grant_type": GRANT_TYPE,
            "assertion": assertion(fcm_creds, "https://oauth2.googleapis.com/token"),
        }
        assert (await http.post("/token", data=grant)).status_code == 200


async def test_send_answers_a_message_name(fcm: Simulator, fcm_creds: FcmCredentials) -> None:
    async with fcm.client() as http:
        answer = await send(http, await access_token(http, fcm_creds), {"message": message()})
    assert answer.http_version == "HTTP/2"
    assert answer.status_code == 200
    assert re.fullmatch(rf"projects/{PROJECT}/messages/0:\d+%[0-9a-f]+", answer.json()["name"])


@pytest.mark.parametrize("bearer", [None, "ya29.made-up"])
async def test_send_needs_a_known_bearer_token(fcm: Simulator, bearer: str | None) -> None:
    async with fcm.client() as http:
        answer = await send(http, bearer, {"message": message()})
    assert fcm_error(answer) == (401, "UNAUTHENTICATED", None)


async def test_send_to_another_project_is_a_sender_id_mismatch(
    fcm: Simulator, fcm_creds: FcmCredentials
) -> None:
    async with fcm.client() as http:
        bearer = await access_token(http, fcm_creds)
        answer = await send(
            http, bearer, {"message": message()}, "/v1/projects/other/messages:send"
        )
    assert fcm_error(answer) == (403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH")


@pytest.mark.parametrize(
    "body",
    [
        {"message": message(topic="news")},
        {"message": {"notification": {"title": "no target"}}},
        {"message": message(data={"count": 3})},
        {"message": message(token="not a token")},
        {"message": message(token="short:APA91b")},
        {"message": message(surprise=True)},
        {"message": message(data={"blob": "x" * 5000})},
        {"message": message(), "validate_only": "yes"},
    ],
)
async def test_invalid_messages_are_invalid_arguments(
    fcm: Simulator, fcm_creds: FcmCredentials, body: Any
) -> None:
    async with fcm.client() as http:
        answer = await send(http, await access_token(http, fcm_creds), body)
    assert fcm_error(answer) == (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT")


async def test_validate_only_is_checked_but_not_delivered(
    fcm: Simulator, fcm_creds: FcmCredentials
) -> None:
    before = fcm.stats()
    async with fcm.client() as http:
        body = {"message": message(collapse_key="dry-run"), "validate_only": True}
        answer = await send(http, await access_token(http, fcm_creds), body)
    assert answer.json() == {"name": f"projects/{PROJECT}/messages/fake_message_id"}
    after = fcm.stats()
    assert after["validated"] == before["validated"] + 1
    assert after["accepted"] == before["accepted"]


async def test_stats_count_devices_and_duplicates_per_collapse_key(
    fcm: Simulator, fcm_creds: FcmCredentials
) -> None:
    """Given alert `fcm-dups` sent to 4 devices concurrently, then again to one."""
    tokens = [f"device{i:02d}:APA91b" + "C" * 146 for i in range(4)]
    async with fcm.client() as http:
        bearer = await access_token(http, fcm_creds)
        answers = await asyncio.gather(
            *(send(http, bearer, {"message": message(t, "fcm-dups")}) for t in [*tokens, tokens[0]])
        )
    assert [answer.status_code for answer in answers] == [200] * 5
    assert fcm.stats(collapse_id="fcm-dups")["by_collapse_id"]["fcm-dups"] == {
        "accepted": 5,
        "distinct": 4,
        "duplicates": 1,
        "duplicated_tokens": 1,
    }


async def test_access_tokens_expire(
    simulators: Callable[..., Simulator], fcm_creds: FcmCredentials
) -> None:
    """Given a 1-second token lifetime, the same bearer is refused once it has passed."""
    short = simulators(fcm_argv(fcm_creds, "--h2c", "--access-token-ttl", "1"))
    async with short.client() as http:
        bearer = await access_token(http, fcm_creds)
        assert (await send(http, bearer, {"message": message()})).status_code == 200
        await asyncio.sleep(1.1)
        answer = await send(http, bearer, {"message": message()})
    assert fcm_error(answer) == (401, "UNAUTHENTICATED", None)
