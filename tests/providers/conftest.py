"""Fixtures for the fast providers: real simulators (TLS with their own CA) as subprocesses,
settings pointing at them, and provider factories that close what they open."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from loadtest.credentials import ApnsCredentials, FcmCredentials, write_service_account
from pushfan.settings import AppConfig, Settings
from pushfan.workers.providers.base import ProviderClient
from pushfan.workers.providers.build import ProviderClients, build_providers
from tests.simulators.conftest import (
    Simulator,
    apns_argv,
    apns_creds,  # fixture, shared with the simulator tests
    simulators,  # fixture
    start_simulator,
    stop,
    workdir,  # fixture
)

TRANSPORTS = ["reqwest", "curl"]


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def one_off(workdir: Path) -> Iterator[Callable[[list[str]], Simulator]]:
    """Simulators for one test (fault flags differ per test), stopped at its end."""
    started: list[Simulator] = []

    def factory(argv: list[str]) -> Simulator:
        simulator = start_simulator(argv, workdir / "tls")
        started.append(simulator)
        return simulator

    yield factory
    for simulator in started:
        stop(simulator)


def fcm_sim_argv(creds: FcmCredentials, *extra: str) -> list[str]:
    account = f"{creds.client_email}={creds.public_key_file}"
    return ["fcm", "--account", account, "--project", creds.project_id, *extra]


@pytest.fixture(scope="session")
def fcm_account(workdir: Path) -> FcmCredentials:
    # token_uri is overridden by settings.fcm_token_url to the simulator under test.
    return write_service_account(workdir / "fcm-fast", "fast-project", "https://127.0.0.1/token")


def app_config(apns: ApnsCredentials | None = None, fcm: FcmCredentials | None = None) -> Any:
    config: dict[str, Any] = {"name": "alpha"}
    if apns is not None:
        config |= {
            "apns_topic": "com.example.alpha",
            "apns_key_id": apns.key_id,
            "apns_team_id": apns.team_id,
            "apns_key_file": apns.key_file,
        }
    if fcm is not None:
        config |= {
            "fcm_project_id": fcm.project_id,
            "fcm_service_account_file": fcm.service_account_file,
        }
    return AppConfig(**config)


@pytest.fixture
async def providers() -> AsyncIterator[Callable[..., ProviderClient]]:
    """Factory: build_providers(settings, provider)['alpha'], closed after the test."""
    built: list[ProviderClients] = []

    def factory(settings: Settings, provider: str) -> ProviderClient:
        made = build_providers(settings, provider)
        built.append(made)
        return made.by_app["alpha"]

    yield factory
    for made in built:
        await made.close()


__all__ = ["apns_argv", "apns_creds", "app_config", "fcm_sim_argv", "simulators", "workdir"]
