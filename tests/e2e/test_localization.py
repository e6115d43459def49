"""A multi-language alert through real processes (API, expander, the apns, fcm and web
senders, the simulators): each device gets its best-matching language (fr-CA, fr, default),
checked from what the simulators received."""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from loadtest.stack import Stack
from pushfan import localization, webpush
from pushfan.content import Message
from pushfan.messages import Notification
from tests.fixtures.alerts import wait_done

pytestmark = pytest.mark.e2e
DEVICES = 600
TITLES = {"default": "Hello", "fr": "Bonjour", "fr-CA": "Allo", "de": "Hallo"}
BODIES = {"default": "Sale", "de": "Rabatt"}
# locale the device registers -> the title it must get
EXPECTED = {"fr-CA": "Allo", "fr_BE": "Bonjour", "de-AT": "Hallo", "pt-BR": "Hello"}


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[Stack, dict[str, str]]]:
    stack = Stack.create(f"l10n_{secrets.token_hex(3)}", apps=("alpha",), web=True)
    try:
        key = stack.prepare(DEVICES, web_fraction=0.3, scopes=("alerts:send", "devices:write"))
        stack.start_simulators()
        stack.start_api()
        stack.start_workers()
        yield stack, {"authorization": f"Bearer {key}"}
    finally:
        stack.stop()
        stack.cleanup()


def send(client: httpx.Client, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    created = client.post("/v1/alerts", json=body, headers=headers)
    assert created.status_code == 202, created.text
    return wait_done(client, created.json()["id"], headers)


def test_apns_and_fcm_devices_get_their_best_matching_language(
    stack: tuple[Stack, dict[str, str]],
) -> None:
    """Four iOS and four Android devices, one per locale: each gets a different text, so
    the texts the simulators received say which device got which language."""
    s, headers = stack
    tag = f"l10n{secrets.token_hex(3)}"
    with httpx.Client(base_url=s.api_url, timeout=10) as client:
        for locale in EXPECTED:
            for platform, token in (
                ("ios", secrets.token_hex(32)),
                ("android", f"{secrets.token_urlsafe(8)}:APA91b{secrets.token_urlsafe(100)}"),
            ):
                device = {"platform": platform, "app": "alpha", "token": token}
                device |= {"locale": locale, "tags": [tag]}  # type: ignore[dict-item]
                registered = client.post("/v1/devices", json=device, headers=headers)
                assert registered.status_code == 201, registered.text
        body = {"title": TITLES, "body": BODIES, "audience": {"tags": [tag]}}
        state = send(client, headers, body)
    assert state["counts"]["delivered"] == state["counts"]["audience"] == 8
    apns, fcm = (s.sim_stats(which, state["id"]) for which in ("apns", "fcm"))
    want = Counter(EXPECTED.values())
    assert Counter(x["payload"]["aps"]["alert"]["title"] for x in apns["samples"]) == want
    assert Counter(x["notification"]["title"] for x in fcm["samples"]) == want
    for sample in apns["samples"]:
        alert = sample["payload"]["aps"]["alert"]
        assert alert["body"] == ("Rabatt" if alert["title"] == "Hallo" else "Sale")


def test_web_pushes_are_counted_per_language_exactly(
    stack: tuple[Stack, dict[str, str]],
) -> None:
    """Every seeded browser gets the payload of its language: the Web Push simulator's
    per-payload counts equal the dry run's audience per locale, matched as documented."""
    s, headers = stack
    body = {"title": TITLES, "body": BODIES, "audience": {"platforms": ["web"]}}
    with httpx.Client(base_url=s.api_url, timeout=10) as client:
        preview = client.post("/v1/alerts:preview?credentials=false", json=body, headers=headers)
        assert preview.status_code == 200, preview.text
        state = send(client, headers, body)
    notification = Notification(
        title="Hello",
        body="Sale",
        collapse_id=state["id"],
        extras=Message(title=TITLES, body=BODIES).extras(),
    )
    locales = localization.locales_of(notification)
    expected: Counter[str] = Counter()
    for bucket in preview.json()["by"]:
        chosen = localization.for_locale(
            notification, localization.best_match(bucket["locale"], locales)
        )
        expected[hashlib.sha256(webpush.render(chosen)).hexdigest()] += bucket["devices"]
    assert len(expected) == 3  # fr-FR -> fr, de-DE -> de, the other seeded locales default
    web = s.sim_stats("web", state["id"])
    assert state["counts"]["delivered"] == sum(expected.values()) > 0
    assert web["payload_digests"] == dict(expected)
