"""Settings for every pushfan process, read from `PUSHFAN_*` environment variables.

Built once in each process's start-up (``Settings()`` in ``main()`` or the API lifespan),
never at import time, so tests build their own with overrides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pushfan.webpush import DEFAULT_PUSH_SERVICES

APNS_PRODUCTION_URL = "https://api.push.apple.com"
APNS_SANDBOX_URL = "https://api.sandbox.push.apple.com"
FCM_PRODUCTION_URL = "https://fcm.googleapis.com"


class AppConfig(BaseModel):
    """One mobile app served by this deployment: its APNs and FCM credentials.

    Secrets are given as file paths (mounted from a Kubernetes Secret) or inline; inline values
    are `SecretStr` so they never show in a repr or a log line.
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    # APNs token auth (.p8 key)...
    apns_topic: str | None = None
    apns_key_id: str | None = None
    apns_team_id: str | None = None
    apns_key_file: Path | None = None
    apns_key: SecretStr | None = None
    # ...or certificate auth (mutual TLS): PEM (certificate + key) or PKCS#12 (.p12) file, or
    # the PEM inline; the password of an encrypted key or of the .p12.
    apns_cert_file: Path | None = None
    apns_cert: SecretStr | None = None
    apns_cert_password: SecretStr | None = None
    # FCM HTTP v1.
    fcm_project_id: str | None = None
    fcm_service_account_file: Path | None = None
    fcm_service_account: SecretStr | None = None
    # Web Push (VAPID, RFC 8292): the app server's P-256 key (PEM, or the raw 32-byte private
    # value in base64url) and the contact the push services may reach (mailto: or https:).
    vapid_private_key_file: Path | None = None
    vapid_private_key: SecretStr | None = None
    vapid_subject: str | None = Field(None, pattern=r"^(mailto:|https://)\S+$")
    # Where invalid tokens are reported in batches (optional).
    invalid_token_webhook: str | None = None
    # Per-app overrides of the provider-wide rate limits (pushes/s).
    apns_rate_limit_per_s: float | None = Field(None, ge=0)
    fcm_rate_limit_per_s: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _one_apns_auth(self) -> AppConfig:
        token = bool(self.apns_key_file or self.apns_key)
        if token and self.uses_apns_certificate:
            raise ValueError(f"app {self.name}: APNs token key or certificate, not both")
        return self

    @property
    def uses_apns_certificate(self) -> bool:
        return bool(self.apns_cert_file or self.apns_cert)

    @property
    def has_apns(self) -> bool:
        if self.uses_apns_certificate:
            return bool(self.apns_topic)
        return bool(self.apns_topic and self.apns_key_id and self.apns_team_id) and bool(
            self.apns_key_file or self.apns_key
        )

    def apns_certificate_bytes(self) -> tuple[bytes, str | None]:
        """The certificate (PEM or PKCS#12 bytes) and its password, for apns_certificate."""
        password = self.apns_cert_password
        secret = password.get_secret_value() if password is not None else None
        if self.apns_cert is not None:
            return self.apns_cert.get_secret_value().encode(), secret
        assert self.apns_cert_file is not None, f"app {self.name} has no APNs certificate"
        return self.apns_cert_file.read_bytes(), secret

    @property
    def has_fcm(self) -> bool:
        return bool(self.fcm_project_id) and bool(
            self.fcm_service_account_file or self.fcm_service_account
        )

    @property
    def has_web(self) -> bool:
        return bool(self.vapid_subject) and bool(
            self.vapid_private_key_file or self.vapid_private_key
        )

    def vapid_key_text(self) -> str:
        if self.vapid_private_key is not None:
            return self.vapid_private_key.get_secret_value()
        assert self.vapid_private_key_file is not None, f"app {self.name} has no VAPID key"
        return self.vapid_private_key_file.read_text()

    def apns_key_pem(self) -> str:
        if self.apns_key is not None:
            return self.apns_key.get_secret_value()
        assert self.apns_key_file is not None, f"app {self.name} has no APNs key"
        return self.apns_key_file.read_text()

    def fcm_service_account_json(self) -> str:
        if self.fcm_service_account is not None:
            return self.fcm_service_account.get_secret_value()
        assert self.fcm_service_account_file is not None, f"app {self.name} has no FCM account"
        return self.fcm_service_account_file.read_text()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PUSHFAN_", env_nested_delimiter="__", extra="ignore"
    )

    environment: Literal["development", "production"] = "development"
    log_level: str = "INFO"

    # Services.
    amqp_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    database_url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/postgres")
    # Isolation: tests and demos get their own schema, queue prefix and key prefix.
    database_schema: str = Field("pushfan", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    queue_prefix: str = Field("pushfan", pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    redis_prefix: str = "pushfan:"
    # Redis through Sentinel: comma-separated host:port of the sentinels and the name they
    # monitor the master under; redis_url then only gives the password and database.
    redis_sentinels: str = ""
    redis_sentinel_service: str = "pushfan"
    # Every Redis command (and connect) fails after this long instead of hanging.
    redis_timeout_s: float = Field(2.0, gt=0)
    # Connecting to PostgreSQL fails after this long; the API also bounds each statement by
    # twice this, so no request waits on an unreachable database past a few seconds.
    database_timeout_s: float = Field(5.0, gt=0)
    queue_type: Literal["quorum", "classic"] = "quorum"
    delivery_limit: int = Field(20, ge=1)  # redeliveries before a poisoned message is dropped

    # API.
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    max_body_bytes: int = 1_048_576
    # /metrics: served on the API port by default (the manifests scrape it there); a
    # separate port keeps it off the public listener, or it can require an `admin` key.
    api_metrics_port: int = 0
    metrics_require_key: bool = False
    # Per-API-key limit on the REST triggers (GCRA in Redis): sustained rate and burst.
    trigger_rate_per_s: float = Field(10.0, ge=0)  # 0 disables the limit
    trigger_burst: int = Field(20, ge=1)
    # Every write route (registration included), per API key and per client address, before
    # the trigger limit above; 0 disables either. The client address is the connection's
    # peer, or what the proxy says when uvicorn trusts it (FORWARDED_ALLOW_IPS).
    write_rate_per_s: float = Field(500.0, ge=0)
    write_burst: int = Field(1000, ge=1)
    # POST /v1/receipts per publishable key: every phone of an app shares its app's key.
    receipt_rate_per_s: float = Field(5_000.0, ge=0)
    receipt_burst: int = Field(10_000, ge=1)
    address_rate_per_s: float = Field(50.0, ge=0)
    address_burst: int = Field(100, ge=1)
    # Dashboard sign-in: server-side sessions in Redis; attempts limited per address, per
    # username and per known device (pushfan.signin states the rule).
    session_ttl_s: int = Field(8 * 3600, ge=60)
    login_attempts_per_min: float = Field(10.0, gt=0)
    known_device_ttl_s: int = Field(90 * 24 * 3600, ge=60)
    # Secure cookies: on by default outside development; browsers accept them on
    # http://localhost too, so a local compose stack can turn them on.
    secure_cookies: bool | None = None

    # Devices not seen (registration or /seen) for this many days are deactivated by
    # `pushfan devices deactivate-stale`; 0 disables the policy.
    device_stale_days: int = Field(270, ge=0)
    # Per-device outcomes (the durable record) of alerts finished this many days ago are
    # deleted by `pushfan outcomes prune`; 0 keeps them for ever.
    outcome_retention_days: int = Field(30, ge=0)

    # Workers.
    metrics_port: int = 0  # 0 disables the worker's /metrics listener
    # Where the workers' (and the API's separate) metrics listener binds: loopback unless
    # a deployment opens it (compose and the manifests set 0.0.0.0).
    metrics_host: str = "127.0.0.1"
    shard_size: int = Field(50_000, ge=1)  # device ids per expansion shard
    batch_size: int = Field(500, ge=1, le=500)  # targets per send batch
    expander_page_size: int = Field(5_000, ge=1)
    expander_prefetch: int = Field(2, ge=1)
    sender_prefetch: int = Field(8, ge=1)
    sender_concurrency: int = Field(500, ge=1)  # pushes in flight per sender process
    # Pushes/s the senders of one provider deliver together (measure with `pushfan bench`);
    # only the dry run's predicted duration reads it.
    sender_capacity_per_s: float = Field(10_000.0, gt=0)
    publish_timeout_s: float = 10.0
    # How long a worker's publish waits for the broker to come back (a restart) before the
    # batch fails and is redelivered.
    publish_retry_window_s: float = Field(30.0, ge=0)
    push_timeout_s: float = 10.0
    drain_deadline_s: float = 25.0
    progress_ttl_s: int = 7 * 24 * 3600  # how long alert counters and dedup bits live
    cancel_poll_s: float = Field(0.2, gt=0, le=1)  # how often workers look for cancellations
    # An alert whose first this-many pushes the provider all refused for authentication
    # pauses itself (pushfan.pausing); 0 turns the rule off.
    auth_pause_after: int = Field(2_000, ge=0)
    # Scheduled alerts (pushfan.workers.scheduler): every worker process looks for due ones
    # this often (and sleeps no longer than until the next one is due); 0 turns it off.
    scheduler_poll_s: float = Field(0.5, ge=0, le=1)
    # A sender holds a batch's lease while sending it; a second copy of the batch waits in the
    # delay ladder meanwhile. Longer than any batch takes; a SIGKILLed holder's lease lapses.
    batch_lease_s: float = Field(30.0, gt=0)

    # Retries (broker-owned): attempt n waits min(cap, base * 2**n) * jitter, or the
    # provider's Retry-After if longer; after the last attempt targets count failed.
    retry_max_attempts: int = Field(6, ge=0)
    retry_base_s: float = Field(1.0, gt=0)
    retry_cap_s: float = Field(300.0, gt=0)

    # Shared rate limits in pushes/s per (provider, app), 0 = unlimited. FCM's default
    # project quota is 600,000 messages/minute; APNs publishes none. Apps may override.
    apns_rate_limit_per_s: float = Field(0.0, ge=0)
    fcm_rate_limit_per_s: float = Field(10_000.0, ge=0)
    # Web Push: the limit is per push-service origin (all apps together), not per app. The
    # push services publish no quota: unlimited by default, still adapting to their 429s.
    web_rate_limit_per_s: float = Field(0.0, ge=0)
    rate_limit_burst_s: float = Field(0.05, gt=0)  # burst allowance, in seconds of rate
    rate_limit_recovery_s: float = Field(60.0, gt=0)  # 429-free time before rising again

    # Providers: base URLs are settings so the same code talks to Apple, Google or the
    # simulators; ca_file is the CA to trust for them (the simulators' own CA in tests).
    apns_base_url: str = APNS_PRODUCTION_URL
    apns_sandbox_url: str = APNS_SANDBOX_URL  # devices registered with apns_environment sandbox
    fcm_base_url: str = FCM_PRODUCTION_URL
    fcm_token_url: str | None = None  # default: the service account's token_uri
    ca_file: Path | None = None
    # Web Push endpoints are user-supplied: only hosts on this list (exact, or "*.suffix")
    # are accepted at registration. `web_push_dev_hosts` ("host:port") lets a local simulator
    # in, IP literal or not; refused outside development.
    web_push_allowed_hosts: list[str] = Field(default_factory=lambda: list(DEFAULT_PUSH_SERVICES))
    web_push_dev_hosts: list[str] = Field(default_factory=list)
    apns_max_connections: int = Field(4, ge=1)
    # "fast": the providers on a multiplexing HTTP/2 transport (`http_transport`, see
    # docs/performance.md); "original": aioapns + httpx, kept as the baseline.
    http_client: Literal["fast", "original"] = "fast"
    http_transport: Literal["reqwest", "curl"] = "reqwest"  # the fast path's library
    http_max_connections: int = Field(2, ge=1)  # per provider host, fast path
    http_max_streams: int = Field(1000, ge=1)  # per connection cap; the server may lower it

    apps: list[AppConfig] = Field(default_factory=list)

    @field_validator("redis_prefix")
    @classmethod
    def _prefix_shape(cls, value: str) -> str:
        if not value or " " in value:
            raise ValueError("redis_prefix must be a non-empty string without spaces")
        return value

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinels_shape(cls, value: str) -> str:
        for item in filter(None, (i.strip() for i in value.split(","))):
            _, sep, port = item.rpartition(":")
            if not sep or not port.isdigit():
                raise ValueError(f"redis_sentinels: {item!r} is not host:port")
        return value

    @model_validator(mode="after")
    def _unique_apps(self) -> Settings:
        names = [app.name for app in self.apps]
        if len(names) != len(set(names)):
            raise ValueError("app names must be unique")
        if self.environment == "production":
            for secret in (self.amqp_url, self.database_url):
                if "guest:guest" in secret.get_secret_value():
                    raise ValueError("refusing default guest credentials in production")
            if self.web_push_dev_hosts:
                raise ValueError("web_push_dev_hosts is for development only")
        return self

    @property
    def cookies_secure(self) -> bool:
        if self.secure_cookies is not None:
            return self.secure_cookies
        return self.environment != "development"

    @property
    def redis_sentinel_addresses(self) -> list[tuple[str, int]]:
        found = []
        for item in self.redis_sentinels.split(","):
            if item.strip():
                host, _, port = item.strip().rpartition(":")
                found.append((host or "127.0.0.1", int(port)))
        return found

    def rate_limit(self, provider: str, app: str) -> float:
        """The configured pushes/s for (provider, app); 0 means unlimited."""
        config = self.app(app)
        override = getattr(config, f"{provider}_rate_limit_per_s", None) if config else None
        if override is not None:
            return float(override)
        return float(getattr(self, f"{provider}_rate_limit_per_s"))

    def app(self, name: str) -> AppConfig | None:
        for app in self.apps:
            if app.name == name:
                return app
        return None

    @property
    def app_names(self) -> list[str]:
        return [app.name for app in self.apps]
