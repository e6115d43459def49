"""The dry run's payload preview shows what a browser would decrypt, sized as encrypted."""

from __future__ import annotations

from pushfan import preview, webpush
from pushfan.messages import Extras, Notification


def test_the_web_preview_is_the_payload_and_its_encrypted_size() -> None:
    note = Notification(title="T", body="B", collapse_id="a1", extras=Extras(url="https://x.io"))
    [web] = preview.rendered(note, {"web"})
    assert web.provider == "web" and web.payload == webpush.payload(note)
    assert web.bytes == len(webpush.render(note)) + webpush.BODY_OVERHEAD_BYTES
