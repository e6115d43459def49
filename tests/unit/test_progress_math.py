"""What the ledger scripts are given and what their answers mean, without Redis."""

from __future__ import annotations

import struct

import pytest

from pushfan.outcomes import FINAL_OUTCOMES, Outcome
from pushfan.progress import COUNTERS, Counts, outcome_args, pack_ids, unpack_flags


def test_ids_are_packed_as_4_little_endian_bytes_each() -> None:
    assert pack_ids([1, 2**32 - 1]) == b"\x01\x00\x00\x00\xff\xff\xff\xff"
    assert pack_ids([]) == b""
    with pytest.raises(struct.error):
        pack_ids([2**32])


def test_pending_flags_are_ones_and_zeros() -> None:
    assert unpack_flags(b"1001") == [True, False, False, True]
    assert unpack_flags(b"") == []


def test_outcome_args_follow_the_final_outcomes_order() -> None:
    sizes, packed = outcome_args({Outcome.CANCELLED: [9], Outcome.DELIVERED: [1, 2]})
    assert sizes == [2, 0, 0, 0, 1]
    assert packed == pack_ids([1, 2, 9])
    assert outcome_args({}) == ([0] * len(FINAL_OUTCOMES), b"")


def test_counts_from_the_script_reply() -> None:
    values = [b"10", b"4", b"1", None, b"2", b"1", b"3", b"2", b"2"]
    counts = Counts.from_values(values)
    assert dict(zip(COUNTERS, [10, 4, 1, 0, 2, 1, 3, 2, 2], strict=True)) == {
        name: getattr(counts, name) for name in COUNTERS
    }
    assert counts.finished == 8 and counts.expanded and not counts.done
    assert Counts.from_values([None] * len(COUNTERS)).shards_total is None


@pytest.mark.parametrize(
    ("counts", "stage", "done"),
    [
        (Counts(), "queued", False),
        (Counts(shards_total=2, shards_done=1, audience=5), "expanding", False),
        (Counts(delivered=1), "expanding", False),  # a push counted before the plan landed
        (Counts(shards_total=2, shards_done=2, audience=5, delivered=4), "sending", False),
        (
            Counts(shards_total=1, shards_done=1, audience=5, delivered=3, expired=2),
            "sending",
            True,
        ),
        (Counts(shards_total=0, shards_done=0), "sending", True),  # nobody to send to
    ],
)
def test_stage_and_done(counts: Counts, stage: str, done: bool) -> None:
    assert counts.stage == stage and counts.done is done
