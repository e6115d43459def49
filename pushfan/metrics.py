"""Prometheus metrics shared by the API and the workers.

Module-level objects with a `pushfan_` prefix and bounded labels (provider, outcome, app is
NOT a label: the app list is configuration, the label sets stay fixed). `precreate()` makes
every series exist at 0 so dashboards and alerts see a flat line rather than no data.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from pushfan.outcomes import Outcome
from pushfan.provider import Provider

# The `outcome` label of pushfan_pushes_total: every outcome of a push (pushfan.outcomes).
OUTCOMES = tuple(outcome.value for outcome in Outcome)

PUSHES = Counter("pushfan_pushes_total", "Pushes by provider and outcome", ["provider", "outcome"])
PROVIDER_LATENCY = Histogram(
    "pushfan_provider_request_seconds",
    "Time from sending a push to the provider's answer",
    ["provider"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SECONDS = Histogram(
    "pushfan_batch_seconds",
    "Time to process one send batch, from delivery to ack",
    ["provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RATE_LIMIT_WAIT = Histogram(
    "pushfan_rate_limit_wait_seconds",
    "Time a batch waited for the shared rate limiter",
    ["provider"],
    buckets=(0, 0.01, 0.05, 0.1, 0.5, 1, 5, 30),
)
IN_FLIGHT = Gauge("pushfan_pushes_in_flight", "Pushes sent and not yet answered", ["provider"])
APNS_CERTIFICATE_EXPIRY = Gauge(
    "pushfan_apns_certificate_expiry_seconds",
    "Seconds until the first of this process's APNs client certificates expires"
    " (0 when no app uses certificate auth)",
)
BATCHES = Counter("pushfan_batches_total", "Send batches processed", ["provider", "result"])
EXPANDED_TARGETS = Counter("pushfan_expanded_targets_total", "Targets published by the expander")
EXPANDED_SHARDS = Counter("pushfan_expanded_shards_total", "Shards fully expanded")
API_LATENCY = Histogram(
    "pushfan_api_request_seconds",
    "API request latency by route template and status class",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
ALERTS_CREATED = Counter("pushfan_alerts_created_total", "Alerts accepted by the API")
ALERTS_FIRED = Counter("pushfan_alerts_fired_total", "Scheduled alerts queued at send_at")
# Planned vs expanded shards is an alert's expansion progress (the expander counts both).
PLANNED_SHARDS = Counter("pushfan_planned_shards_total", "Shards planned by the expander")

BATCH_RESULTS = ("acked", "failed")
STATUS_CLASSES = ("2xx", "4xx", "5xx")
# Any other request method is labelled "other": clients choose the method, labels stay bounded.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    return method if method in HTTP_METHODS else "other"


def precreate() -> None:
    for provider in Provider:
        for outcome in OUTCOMES:
            PUSHES.labels(provider, outcome)
        PROVIDER_LATENCY.labels(provider)
        BATCH_SECONDS.labels(provider)
        RATE_LIMIT_WAIT.labels(provider)
        IN_FLIGHT.labels(provider)
        for result in BATCH_RESULTS:
            BATCHES.labels(provider, result)


def precreate_api(routes: Iterable[tuple[str, Iterable[str]]]) -> None:
    """Pre-create the latency series of every (route template, method) the API serves."""
    for path, methods in routes:
        for method in methods:
            for status in STATUS_CLASSES:
                API_LATENCY.labels(path, method_label(method), status)


def serve_worker_endpoints(
    host: str, port: int, is_ready: Callable[[], bool]
) -> ThreadingHTTPServer:
    """Serve /metrics, /healthz and /readyz for a worker on `host`:`port` in a daemon
    thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body, ctype, code = generate_latest(), CONTENT_TYPE_LATEST, 200
            elif self.path == "/healthz":
                body, ctype, code = b"ok\n", "text/plain", 200
            elif self.path == "/readyz":
                ready = is_ready()
                body, ctype = (b"ready\n" if ready else b"not ready\n"), "text/plain"
                code = 200 if ready else 503
            else:
                body, ctype, code = b"not found\n", "text/plain", 404
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # scrapes every few seconds would drown the worker's log

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
