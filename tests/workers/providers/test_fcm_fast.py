"""FastFcmProvider against the real FCM simulator over TLS with its own CA: OAuth tokens,
collapse_key and ttl in the body, dead tokens, quota with Retry-After."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadtest.credentials import FcmCredentials, write_service_account
from loadtest.simulators.faults import is_dead
from pushfan.messages import Notification
from pushfan.settings import Settings
from tests.fixtures.providers import app_config, fcm_sim_argv
from tests.fixtures.simulators import Simulator

Factory = Callable[..., Any]


def note(alert: str) -> Notification:
    return Notification(
        title="Hi", body="There", collapse_id=alert, expires_at=int(time.time()) + 600
    )


def tokens(n: int) -> tuple[list[int], list[str]]:
    ids = list(range(n))
    return ids, [f"tok{i}:APA91b" + "A" * 140 for i in ids]


def settings_for(sim: Simulator, creds: FcmCredentials, transport: str = "reqwest") -> Settings:
    return Settings(
        apps=[app_config(fcm=creds)],
        fcm_base_url=sim.url,
        fcm_token_url=f"{sim.url}/token",
        ca_file=sim.ca,
        http_transport=transport,
        push_timeout_s=5,
    )


async def test_pushes_are_delivered_once_each_with_the_collapse_key(
    transport: str,
    simulators: Callable[[list[str]], Simulator],
    fcm_account: FcmCredentials,
    providers: Factory,
) -> None:
    """Given 600 tokens, all are delivered and counted once under android.collapse_key."""
    sim = simulators(fcm_sim_argv(fcm_account))
    provider = providers(settings_for(sim, fcm_account, transport), "fcm")
    alert = f"fcm-{transport}"
    ids, toks = tokens(600)
    result = await provider.send(note(alert), ids, toks)
    assert sorted(result.delivered) == ids, result.reasons
    stats = sim.stats(collapse_id=alert)
    assert (stats["accepted"], stats["duplicates"]) == (600, 0)


async def test_unregistered_tokens_are_invalid(
    one_off: Callable[[list[str]], Simulator], fcm_account: FcmCredentials, providers: Factory
) -> None:
    """404 UNREGISTERED lands in `invalid`."""
    sim = one_off(fcm_sim_argv(fcm_account, "--seed", "5", "--dead-fraction", "0.3"))
    provider = providers(settings_for(sim, fcm_account), "fcm")
    ids, toks = tokens(300)
    result = await provider.send(note("dead"), ids, toks)
    dead = {i for i, t in zip(ids, toks, strict=True) if is_dead(5, t, 0.3)}
    assert set(result.invalid) == dead and dead
    assert set(result.delivered) == set(ids) - dead


async def test_quota_is_retried_after_retry_after(
    one_off: Callable[[list[str]], Simulator], fcm_account: FcmCredentials, providers: Factory
) -> None:
    """Beyond the project's quota: 429 QUOTA_EXCEEDED, RETRIED, Retry-After honoured."""
    sim = one_off(fcm_sim_argv(fcm_account, "--quota-per-minute", "50"))
    provider = providers(settings_for(sim, fcm_account), "fcm")
    ids, toks = tokens(200)
    result = await provider.send(note("quota"), ids, toks)
    assert len(result.delivered) == 50
    assert len(result.retried) == result.throttled == 150
    assert result.retry_after is not None and 0 < result.retry_after <= 60


async def test_an_unknown_service_account_is_retried(
    simulators: Callable[[list[str]], Simulator],
    fcm_account: FcmCredentials,
    providers: Factory,
    workdir: Path,
) -> None:
    """The token endpoint refuses an account it does not know: nothing is sent, the batch
    is RETRIED (credentials may be fixed before the retry)."""
    sim = simulators(fcm_sim_argv(fcm_account))
    stranger = write_service_account(workdir / "stranger-fcm", "fast-project", "https://x/token")
    provider = providers(settings_for(sim, stranger), "fcm")
    ids, toks = tokens(5)
    result = await provider.send(note("stranger"), ids, toks)
    assert sorted(result.retried) == ids
    assert list(result.reasons) == ["oauth:TokenError"]
