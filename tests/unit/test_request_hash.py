"""AlertIn.request_hash: what makes two triggers with one Idempotency-Key the same request."""

from __future__ import annotations

import dataclasses

from pushfan.alerts import AlertIn
from pushfan.messages import AudienceFilter, TargetSpec

ALERT = AlertIn("t", "b", {"k": "v"}, AudienceFilter(["ios"], ["a", "b"], ["x"]), 600, "high")


def test_the_same_request_hashes_the_same_whatever_the_order_of_its_lists() -> None:
    shuffled = dataclasses.replace(ALERT, audience=AudienceFilter(["ios"], ["b", "a"], ["x"]))
    assert ALERT.request_hash() == shuffled.request_hash()
    assert len(ALERT.request_hash()) == 64


def test_any_difference_changes_the_hash() -> None:
    variants = [
        dataclasses.replace(ALERT, title="T"),
        dataclasses.replace(ALERT, body="B"),
        dataclasses.replace(ALERT, data={"k": "w"}),
        dataclasses.replace(ALERT, audience=AudienceFilter(["android"], ["a", "b"], ["x"])),
        dataclasses.replace(ALERT, ttl_s=60),
        dataclasses.replace(ALERT, priority="normal"),
        dataclasses.replace(ALERT, targets=TargetSpec(device_ids=[1])),
    ]
    hashes = {v.request_hash() for v in variants}
    assert ALERT.request_hash() not in hashes and len(hashes) == len(variants)
