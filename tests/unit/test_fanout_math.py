"""The fast providers' per-batch arithmetic and ids, without a network."""

from __future__ import annotations

import uuid

import pytest

from pushfan.workers.providers.apns_fast import APNS_ID_NAMESPACE, apns_id_prefix
from pushfan.workers.providers.fanout import lanes_per_batch, stable_uuid_hex


@pytest.mark.parametrize(
    ("concurrency", "prefetch", "lanes"),
    [(500, 8, 63), (500, 1, 500), (8, 8, 8), (10, 0, 10), (16, 4, 8)],
)
def test_prefetch_batches_together_fill_the_concurrency(
    concurrency: int, prefetch: int, lanes: int
) -> None:
    assert lanes_per_batch(concurrency, prefetch) == lanes


@pytest.mark.parametrize("device_id", [0, 7, 123_456_789])
def test_the_apns_id_is_uuid5_of_alert_and_device(device_id: int) -> None:
    digest = apns_id_prefix("alert-1")
    digest.update(str(device_id).encode())
    expected = uuid.uuid5(APNS_ID_NAMESPACE, f"alert-1:{device_id}")
    assert stable_uuid_hex(digest.digest()) == str(expected)
