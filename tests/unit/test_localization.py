"""Localization (pushfan.localization): the locale a device gets, the notification rendered
per locale, the batches grouped per locale, and every locale's payload rendered on each
provider (APNs, FCM, Web Push). Pure functions and a fake publisher, no services."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from pushfan import localization, payloads, registry, webpush
from pushfan.content import Message
from pushfan.messages import AudienceFilter, ExpandTask, Notification, decode_batch
from pushfan.topology import QueueNames
from pushfan.workers.batching import Batcher

TEXTS = {
    "title": {"default": "Hello", "fr": "Bonjour", "fr-CA": "Allo", "de": "Hallo"},
    "subtitle": {"default": "Today", "fr": "Aujourd'hui"},
    "body": {"default": "Sale", "de": "Rabatt"},
}


def notification(**fields: Any) -> Notification:
    m = Message(**(TEXTS | fields))
    return Notification(
        title=m.text("title") or "",
        body=m.text("body") or "",
        collapse_id="a1",
        extras=m.extras(),
    )


@pytest.mark.parametrize(
    ("device", "chosen"),
    [
        ("fr-CA", "fr-ca"),
        ("fr_CA", "fr-ca"),
        ("FR-ca", "fr-ca"),
        ("fr-BE", "fr"),
        ("fr", "fr"),
        ("de-AT", "de"),
        ("pt-BR", ""),
        ("f", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_a_device_gets_its_locale_then_its_language_then_the_default(
    device: str | None, chosen: str
) -> None:
    assert localization.best_match(device, {"fr", "fr-ca", "de"}) == chosen


def test_each_field_falls_back_on_its_own() -> None:
    """fr-CA sets only the title: its subtitle is fr's, its body the default."""
    n = notification()
    fr_ca = localization.for_locale(n, "fr-ca")
    assert (fr_ca.title, fr_ca.extras and fr_ca.extras.subtitle, fr_ca.body) == (
        "Allo",
        "Aujourd'hui",
        "Sale",
    )
    de = localization.for_locale(n, "de")
    assert (de.title, de.extras and de.extras.subtitle, de.body) == ("Hallo", "Today", "Rabatt")
    default = localization.for_locale(n, localization.DEFAULT)
    assert (default.title, default.body) == ("Hello", "Sale")
    for resolved in (fr_ca, de, default):
        assert resolved.extras is not None and resolved.extras.locales == {}


def test_a_message_in_one_language_has_no_locales() -> None:
    m = Message(title="Hi", body="There")
    assert m.extras() is None
    assert [locale for locale, _ in localization.variants(notification(**m.model_dump()))] == [""]


def test_texts_by_locale_need_a_default_and_distinct_well_formed_keys() -> None:
    with pytest.raises(ValidationError, match="need a"):
        Message(title={"fr": "Salut"}, body="b")
    with pytest.raises(ValidationError, match="same locale"):
        Message(title={"default": "t", "de-AT": "a", "de_at": "b"}, body="b")
    with pytest.raises(ValidationError, match="pattern"):
        Message(title={"default": "t", "french": "a"}, body="b")
    with pytest.raises(ValidationError):
        Message(title={f"x{i:02d}"[:3]: "t" for i in range(70)} | {"default": "t"}, body="b")


def test_every_locale_renders_on_apns_fcm_and_web_push() -> None:
    n = notification()
    rendered = {
        locale: (
            orjson.loads(payloads.apns_body(v))["aps"]["alert"],
            payloads.fcm_message(v, "T")["message"],
            orjson.loads(webpush.render(v)),
        )
        for locale, v in localization.variants(n)
    }
    assert set(rendered) == {"", "de", "fr", "fr-ca"}
    apns, fcm, web = rendered["fr-ca"]
    assert apns == {"title": "Allo", "subtitle": "Aujourd'hui", "body": "Sale"}
    assert fcm["notification"] == {"title": "Allo", "body": "Sale"}  # type: ignore[index]
    assert (web["title"], web["body"]) == ("Allo", "Sale")
    for _, v in localization.variants(n):
        assert payloads.oversize_reason(v) is None and webpush.oversize_reason(v) is None


class Published:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def publish(self, queue: str, body: bytes, message_id: str) -> None:
        self.bodies.append(body)


async def test_batches_group_by_locale_and_carry_only_their_language() -> None:
    task = ExpandTask(
        alert_id="a1", kind="shard", audience=AudienceFilter(), notification=notification(), shard=0
    )
    locales = ["fr-CA", "fr_FR", "de", None, "fr-CA", "ja", "de-CH"]
    targets = [
        registry.Target(i, "android", "alpha", f"t{i}", "production", locale)
        for i, locale in enumerate(locales, 1)
    ] + [registry.Target(9, "ios", "alpha", "t9", "production", "fr-CA")]
    published = Published()
    publisher: Any = published
    async with Batcher(publisher, QueueNames.for_prefix("q"), 500, task) as batcher:
        await batcher.add(targets)
    batches = [decode_batch(body) for body in published.bodies]
    got = {(b.provider, b.notification.title): b.device_ids for b in batches}
    assert got == {
        ("fcm", "Allo"): [1, 5],
        ("fcm", "Bonjour"): [2],
        ("fcm", "Hallo"): [3, 7],
        ("fcm", "Hello"): [4, 6],
        ("apns", "Allo"): [9],
    }
    assert all(b.notification.extras and not b.notification.extras.locales for b in batches)
    assert len({b.batch_id for b in batches}) == len(batches)
