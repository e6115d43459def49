"""FastApnsProvider against the real APNs simulator over TLS with its own CA: every push ends
in exactly one outcome list, as the simulator saw it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from loadtest.credentials import ApnsCredentials, write_apns_key
from loadtest.simulators.faults import is_dead
from pushfan.messages import Notification
from pushfan.settings import Settings
from pushfan.workers.providers.apns_fast import APNS_ID_NAMESPACE, apns_id_prefix
from pushfan.workers.providers.fanout import stable_uuid_hex
from tests.fixtures.providers import app_config
from tests.fixtures.simulators import Simulator, apns_argv

Factory = Callable[..., Any]


def note(alert: str = "alert-1") -> Notification:
    return Notification(
        title="Hi", body="There", collapse_id=alert, expires_at=int(time.time()) + 600
    )


def tokens(n: int, offset: int = 0) -> tuple[list[int], list[str]]:
    ids = list(range(offset, offset + n))
    return ids, [f"{i:064x}" for i in ids]


def settings_for(sim: Simulator, creds: ApnsCredentials, transport: str = "reqwest") -> Settings:
    return Settings(
        apps=[app_config(apns=creds)],
        apns_base_url=sim.url,
        ca_file=sim.ca,
        http_transport=transport,
        push_timeout_s=5,
    )


def test_apns_id_is_uuid5_of_alert_and_device() -> None:
    """The fast apns-id equals the original client's uuid5, so ids survive a client switch."""
    digest = apns_id_prefix("alert-1")
    digest.update(b"42")
    assert stable_uuid_hex(digest.digest()) == str(uuid.uuid5(APNS_ID_NAMESPACE, "alert-1:42"))


async def test_pushes_are_delivered_once_each(
    transport: str,
    simulators: Callable[[list[str]], Simulator],
    apns_creds: ApnsCredentials,
    providers: Factory,
) -> None:
    """Given 600 live tokens, all are delivered and the simulator counts each once under
    the alert's collapse id."""
    sim = simulators(apns_argv(apns_creds))
    provider = providers(settings_for(sim, apns_creds, transport), "apns")
    alert = f"alert-{transport}"
    ids, toks = tokens(600)
    result = await provider.send(note(alert), ids, toks)
    assert sorted(result.delivered) == ids
    assert not (result.invalid or result.retried or result.failed)
    stats = sim.stats(collapse_id=alert)
    assert (stats["accepted"], stats["duplicates"]) == (600, 0)


async def test_dead_tokens_are_invalid(
    one_off: Callable[[list[str]], Simulator], apns_creds: ApnsCredentials, providers: Factory
) -> None:
    """410 Unregistered lands in `invalid`; the rest are delivered."""
    sim = one_off(apns_argv(apns_creds, "--seed", "3", "--dead-fraction", "0.3"))
    provider = providers(settings_for(sim, apns_creds), "apns")
    ids, toks = tokens(300)
    result = await provider.send(note(), ids, toks)
    dead = {i for i, t in zip(ids, toks, strict=True) if is_dead(3, t, 0.3)}
    assert set(result.invalid) == dead and dead
    assert set(result.delivered) == set(ids) - dead


@pytest.mark.parametrize(
    ("flags", "status"), [(["--rate-limit", "20"], 429), (["--error-fraction", "1"], 503)]
)
async def test_throttling_and_errors_are_retried(
    flags: list[str],
    status: int,
    one_off: Callable[[list[str]], Simulator],
    apns_creds: ApnsCredentials,
    providers: Factory,
) -> None:
    """429 TooManyRequests and 5xx come back RETRIED (429s counted as throttled)."""
    sim = one_off(apns_argv(apns_creds, *flags))
    provider = providers(settings_for(sim, apns_creds), "apns")
    ids, toks = tokens(200)
    result = await provider.send(note(), ids, toks)
    assert len(result.retried) >= 150
    assert sorted(result.delivered + result.retried) == ids
    if status == 429:
        assert result.throttled == len(result.retried)
        assert result.reasons["TooManyRequests"] == len(result.retried)
    else:
        assert set(result.reasons) <= {"InternalServerError", "ServiceUnavailable"}


async def test_an_unknown_signing_key_fails(
    simulators: Callable[[list[str]], Simulator],
    apns_creds: ApnsCredentials,
    providers: Factory,
    workdir: Any,
) -> None:
    """A JWT signed with a key the provider does not know: 403 InvalidProviderToken."""
    sim = simulators(apns_argv(apns_creds))
    stranger = write_apns_key(workdir / "stranger")
    provider = providers(settings_for(sim, stranger), "apns")
    ids, toks = tokens(5)
    result = await provider.send(note(), ids, toks)
    assert sorted(result.failed) == ids
    assert result.reasons == {"InvalidProviderToken": 5}


async def test_dropped_connections_lose_no_push(
    transport: str,
    one_off: Callable[[list[str]], Simulator],
    apns_creds: ApnsCredentials,
    providers: Factory,
) -> None:
    """With the connection aborted every 97 requests, every push is either delivered (and
    seen by the simulator) or RETRIED, and the next batch reconnects and gets through."""
    sim = one_off(apns_argv(apns_creds, "--drop-connection-every", "97"))
    provider = providers(settings_for(sim, apns_creds, transport), "apns")
    ids, toks = tokens(400)
    first = await provider.send(note("drop"), ids, toks)
    assert sorted(first.delivered + first.retried) == ids
    assert first.retried, "the relay dropped nothing"
    # Pushes the server took whose answer died with the connection are on the wire: they
    # count RETRIED (the phone collapses the repeat by apns-collapse-id).
    accepted = sim.stats(collapse_id="drop")["accepted"]
    assert len(first.delivered) <= accepted <= len(first.delivered) + len(first.retried)
    retry = first.retried
    again = await provider.send(note("drop"), retry, [f"{i:064x}" for i in retry])
    assert len(again.delivered) > 0


async def test_stop_sets_aside_the_pushes_not_yet_sent(
    simulators: Callable[[list[str]], Simulator],
    apns_creds: ApnsCredentials,
    providers: Factory,
) -> None:
    """Once `stop` says so, the remaining pushes are set aside as `stopped`, not sent."""
    sim = simulators(apns_argv(apns_creds))
    provider = providers(settings_for(sim, apns_creds), "apns")
    ids, toks = tokens(100, offset=10_000)
    result = await provider.send(note("stopped"), ids, toks, stop=lambda: True)
    assert sorted(result.stopped) == ids
    assert sim.stats(collapse_id="stopped")["accepted"] == 0
