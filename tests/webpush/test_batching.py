"""Web batches: the expander groups web targets per push-service origin (connection reuse,
one origin's rate limit per batch); the sender takes from that origin's limit."""

from __future__ import annotations

from dataclasses import dataclass, field

from pushfan import registry
from pushfan.messages import AudienceFilter, ExpandTask, Notification, SendBatch, decode_batch
from pushfan.topology import QueueNames
from pushfan.webpush import origin_of, wire_token
from pushfan.workers.batching import Batcher
from pushfan.workers.sender import rate_subject
from tests.webpush.keys import RFC_AUTH, RFC_UA_PUBLIC

KEYS = f"{RFC_UA_PUBLIC} {RFC_AUTH}"
ORIGINS = ["https://fcm.googleapis.com", "https://updates.push.services.mozilla.com"]


@dataclass
class Recorder:
    published: list[tuple[str, bytes, str]] = field(default_factory=list)

    async def publish(self, queue: str, body: bytes, message_id: str) -> None:
        self.published.append((queue, body, message_id))


def targets() -> list[registry.Target]:
    found = []
    for i in range(1, 11):
        if i % 3 == 0:
            found.append(registry.Target(i, "ios", "alpha", f"{i:064x}"))
        else:
            endpoint = f"{ORIGINS[i % 2]}/push/{i}"
            found.append(registry.Target(i, "web", "alpha", wire_token(endpoint, KEYS)))
    return found


async def expand() -> list[tuple[str, SendBatch]]:
    recorder = Recorder()
    task = ExpandTask("a1", "shard", AudienceFilter(), Notification("t", "b"), shard=0)
    async with Batcher(recorder, QueueNames.for_prefix("p"), 3, task) as batcher:  # type: ignore[arg-type]
        await batcher.add(targets())
    return [(queue, decode_batch(body)) for queue, body, _ in recorder.published]


async def test_web_batches_hold_one_origin_and_ids_are_stable() -> None:
    first, again = await expand(), await expand()
    assert [b.batch_id for _, b in first] == [b.batch_id for _, b in again]
    ids = [b.batch_id for _, b in first]
    assert len(ids) == len(set(ids))
    web = [b for queue, b in first if queue == "p.send.web"]
    assert sum(len(b.device_ids) for b in web) == 7
    for batch in web:
        assert batch.provider == "web" and len({origin_of(t) for t in batch.tokens}) == 1
    assert {origin_of(b.tokens[0]) for b in web} == set(ORIGINS)
    assert all(b.provider == "apns" for queue, b in first if queue == "p.send.apns")


async def test_a_web_batch_takes_from_its_origins_rate_limit() -> None:
    batches = dict((b.batch_id, b) for _, b in await expand())
    for batch in batches.values():
        expected = origin_of(batch.tokens[0]) if batch.provider == "web" else batch.app
        assert rate_subject(batch) == expected
