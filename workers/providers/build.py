"""Provider clients built from settings: one per app (and APNs host) for the provider a
sender serves.

`settings.http_client` picks the client: "fast" (apns_fast / fcm_fast on the HTTP/2
transport named by `settings.http_transport`) or "original" (aioapns / httpx, the baseline
the benchmark compares against).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import partial

import httpx

from pushfan.messages import route
from pushfan.provider import Provider
from pushfan.settings import Settings
from pushfan.workers.providers.apns_certificates import load_for, watch
from pushfan.workers.providers.base import ProviderClient
from pushfan.workers.providers.tls import client_context
from pushfan.workers.providers.transport import Transport, TransportConfig, TransportKind


@dataclass
class ProviderClients:
    by_app: dict[str, ProviderClient]
    _clients: list[httpx.AsyncClient] = field(default_factory=list)
    _transports: list[Transport] = field(default_factory=list)

    async def close(self) -> None:
        for provider in self.by_app.values():
            await provider.close()
        for client in self._clients:
            await client.aclose()
        for transport in self._transports:
            await transport.close()


def apns_hosts(settings: Settings) -> dict[str, str]:
    """APNs base URL per device environment."""
    return {"production": settings.apns_base_url, "sandbox": settings.apns_sandbox_url}


def build_providers(settings: Settings, provider: Provider | str) -> ProviderClients:
    """Clients of `provider` keyed by route (pushfan.messages.route: the app name, or
    `app@sandbox` for the APNs sandbox host), for the apps that have its credentials."""
    provider = Provider(provider)  # ValueError for anything but a provider
    # One bound on pushes in flight per process, shared by every app's provider.
    concurrency = asyncio.Semaphore(settings.sender_concurrency)
    if provider is Provider.WEB:
        return _web(settings, concurrency)  # one client whatever `http_client` says
    if settings.http_client == "fast":
        return _fast(settings, provider, concurrency)
    return _original(settings, provider, concurrency)


def _fast(
    settings: Settings, provider: Provider, concurrency: asyncio.Semaphore
) -> ProviderClients:
    from pushfan.workers.providers.fcm_fast import FastFcmProvider

    if provider is Provider.APNS:
        return _fast_apns(settings, concurrency)
    # One transport for FCM, shared by every app: their pushes multiplex on its connections.
    transport = _transport(settings, settings.fcm_base_url)
    fcm: dict[str, ProviderClient] = {
        app.name: FastFcmProvider(settings, app, transport, concurrency)
        for app in settings.apps
        if app.has_fcm
    }
    return ProviderClients(fcm, _transports=[transport])


def _fast_apns(settings: Settings, concurrency: asyncio.Semaphore) -> ProviderClients:
    """One transport per APNs host (production, sandbox), shared by every token-auth app: the
    apps' pushes multiplex on the same few connections. A certificate-auth app has its own
    (the connection carries its certificate). A host is dialled on first use."""
    from pushfan.workers.providers.apns_fast import FastApnsProvider

    apns: dict[str, ProviderClient] = {}
    transports = []
    certificates = {
        app.name: load_for(app)
        for app in settings.apps
        if app.has_apns and app.uses_apns_certificate
    }
    watch(list(certificates.values()))
    for environment, base_url in apns_hosts(settings).items():
        shared = _transport(settings, base_url)
        transports.append(shared)
        for app in (a for a in settings.apps if a.has_apns):
            transport = shared
            certificate = certificates.get(app.name)
            if certificate is not None:
                transport = _transport(settings, base_url, certificate.identity_pem)
                transports.append(transport)
            key = route(app.name, environment)
            apns[key] = FastApnsProvider(settings, app, transport, concurrency)
    return ProviderClients(apns, _transports=transports)


def _transport(settings: Settings, base_url: str, identity: bytes | None = None) -> Transport:
    return build_transport(
        settings.http_transport,
        TransportConfig(
            base_url=base_url,
            ca_file=settings.ca_file,
            max_connections=settings.http_max_connections,
            max_streams=settings.http_max_streams,
            timeout_s=settings.push_timeout_s,
            client_identity_pem=identity,
        ),
    )


def _original(
    settings: Settings, provider: Provider, concurrency: asyncio.Semaphore
) -> ProviderClients:
    from pushfan.workers.providers.apns_aioapns import AioapnsProvider
    from pushfan.workers.providers.fcm_httpx import HttpxFcmProvider

    if provider is Provider.APNS:
        if any(app.uses_apns_certificate for app in settings.apps):
            raise ValueError("APNs certificate auth needs PUSHFAN_HTTP_CLIENT=fast")
        return ProviderClients(
            {
                route(app.name, environment): AioapnsProvider(settings, app, concurrency, url)
                for environment, url in apns_hosts(settings).items()
                for app in settings.apps
                if app.has_apns
            }
        )
    client = httpx.AsyncClient(
        http2=True,
        verify=client_context(settings.ca_file),
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
    )
    return ProviderClients(
        {
            app.name: HttpxFcmProvider(settings, app, client, concurrency)
            for app in settings.apps
            if app.has_fcm
        },
        [client],
    )


def _web(settings: Settings, concurrency: asyncio.Semaphore) -> ProviderClients:
    from pushfan.workers.providers.web_push import OriginTransports, WebPushProvider

    # One transport per push-service origin, shared by the apps.
    transports = OriginTransports(settings, partial(build_transport, settings.http_transport))
    web: dict[str, ProviderClient] = {
        app.name: WebPushProvider(settings, app, transports, concurrency)
        for app in settings.apps
        if app.has_web
    }
    return ProviderClients(web, _transports=[transports])


def build_transport(kind: TransportKind, config: TransportConfig) -> Transport:
    if kind == "curl":
        from pushfan.workers.providers.curl_transport import CurlTransport

        return CurlTransport(config)
    if kind == "reqwest":
        from pushfan.workers.providers.reqwest_transport import ReqwestTransport

        return ReqwestTransport(config)
    raise ValueError(f"unknown transport {kind!r}")
