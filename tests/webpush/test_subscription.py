"""Subscription checks (pushfan.webpush): the SSRF table, the keys, the wire token."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pushfan import webpush
from pushfan.settings import Settings
from pushfan.webpush import DEFAULT_PUSH_SERVICES, SubscriptionRefused
from tests.webpush.keys import RFC_AUTH, RFC_UA_PUBLIC, Browser
from tests.webpush.ssrf_table import ACCEPTED, REFUSED


@pytest.mark.parametrize(("endpoint", "reason"), REFUSED)
def test_refused_endpoints_say_why(endpoint: str, reason: str) -> None:
    with pytest.raises(SubscriptionRefused, match=reason.replace("\\", "\\\\")):
        webpush.check_endpoint(endpoint, DEFAULT_PUSH_SERVICES)


@pytest.mark.parametrize("endpoint", ACCEPTED)
def test_the_browsers_push_services_are_accepted(endpoint: str) -> None:
    assert webpush.check_endpoint(endpoint, DEFAULT_PUSH_SERVICES) == endpoint.replace(":443", "")


def test_an_endpoint_is_normalised_so_one_browser_is_one_device() -> None:
    given = "https://FCM.GoogleAPIs.com:443/fcm/send/AbC"
    normal = "https://fcm.googleapis.com/fcm/send/AbC"
    assert webpush.check_endpoint(given, DEFAULT_PUSH_SERVICES) == normal


def test_a_dev_host_is_accepted_only_at_its_port_and_over_https() -> None:
    dev = ["127.0.0.1:8445"]
    ok = "https://127.0.0.1:8445/push/abc"
    assert webpush.check_endpoint(ok, DEFAULT_PUSH_SERVICES, dev) == ok
    for bad in ("https://127.0.0.1:8446/push/abc", "http://127.0.0.1:8445/push/abc"):
        with pytest.raises(SubscriptionRefused):
            webpush.check_endpoint(bad, DEFAULT_PUSH_SERVICES, dev)


def test_dev_hosts_are_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="development only"):
        Settings(
            environment="production",
            amqp_url="amqp://u:p@mq/",
            database_url="postgresql://u:p@db/x",
            web_push_dev_hosts=["127.0.0.1:8445"],
        )


def test_the_rfc_keys_are_accepted_and_canonicalised() -> None:
    point, secret = webpush.check_keys(RFC_UA_PUBLIC + "=", RFC_AUTH + "==")
    assert len(point) == 65 and len(secret) == 16
    sub = webpush.parse(ACCEPTED[0], RFC_UA_PUBLIC, RFC_AUTH, DEFAULT_PUSH_SERVICES)
    assert sub.keys == f"{RFC_UA_PUBLIC} {RFC_AUTH}"


@pytest.mark.parametrize(
    ("p256dh", "auth", "reason"),
    [
        (RFC_UA_PUBLIC[:-4], RFC_AUTH, "uncompressed P-256 point"),  # 62 bytes
        ("A" + RFC_UA_PUBLIC[1:], RFC_AUTH, "uncompressed P-256 point"),  # not 0x04
        (RFC_UA_PUBLIC[:-2] + "AA", RFC_AUTH, "not a point on P-256"),  # y changed
        ("BA" + "A" * 85, RFC_AUTH, "not a point on P-256"),  # 0x04 then zeros
        (RFC_UA_PUBLIC, RFC_AUTH[:-3], "keys.auth must be 16 bytes"),
        (RFC_UA_PUBLIC, RFC_AUTH + "AAAA", "keys.auth must be 16 bytes"),
        (RFC_UA_PUBLIC.replace("_", "/"), RFC_AUTH, "base64url"),
        (RFC_UA_PUBLIC, "!!!!", "base64url"),
    ],
)
def test_bad_keys_are_refused(p256dh: str, auth: str, reason: str) -> None:
    with pytest.raises(SubscriptionRefused, match=reason):
        webpush.check_keys(p256dh, auth)


def test_the_wire_token_carries_endpoint_and_keys() -> None:
    browser = Browser.new()
    sub = webpush.parse(ACCEPTED[2], browser.p256dh, browser.auth_b64, DEFAULT_PUSH_SERVICES)
    endpoint, point, secret, expires = webpush.split_wire_token(
        webpush.wire_token(sub.endpoint, sub.keys)
    )
    assert (endpoint, point, secret, expires) == (sub.endpoint, sub.p256dh, browser.auth, 0)
    with_expiry = webpush.wire_token(sub.endpoint, sub.keys, 1_900_000_000)
    assert webpush.split_wire_token(with_expiry) == (
        *webpush.split_wire_token(endpoint + " " + sub.keys)[:3],
        1_900_000_000,
    )
    assert webpush.origin_of(endpoint) == "https://wns2-par02p.notify.windows.com"
