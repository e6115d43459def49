"""Providers built from settings: one per app for the provider a sender serves."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx

from pushfan.settings import Settings
from workers.providers.apns_aioapns import AioapnsProvider
from workers.providers.base import Provider
from workers.providers.fcm_httpx import HttpxFcmProvider
from workers.providers.tls import client_context


@dataclass
class Providers:
    by_app: dict[str, Provider]
    _clients: list[httpx.AsyncClient] = field(default_factory=list)

    async def close(self) -> None:
        for provider in self.by_app.values():
            await provider.close()
        for client in self._clients:
            await client.aclose()


def build_providers(settings: Settings, provider: str) -> Providers:
    """Providers for `provider` ("apns" or "fcm") keyed by app name, for apps that have it."""
    # One bound on pushes in flight per process, shared by every app's provider.
    concurrency = asyncio.Semaphore(settings.sender_concurrency)
    if provider == "apns":
        return Providers(
            {
                app.name: AioapnsProvider(settings, app, concurrency)
                for app in settings.apps
                if app.has_apns
            }
        )
    if provider == "fcm":
        client = httpx.AsyncClient(
            http2=True,
            verify=client_context(settings.ca_file),
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
        )
        return Providers(
            {
                app.name: HttpxFcmProvider(settings, app, client, concurrency)
                for app in settings.apps
                if app.has_fcm
            },
            [client],
        )
    raise ValueError(f"unknown provider {provider!r}")
