"""Token shapes the registry accepts, the seed's synthetic tokens, the expander's shard math."""

from __future__ import annotations

import pytest

from pushfan.registry import BadToken, normalise_token
from pushfan.seed import apns_token, fcm_token
from pushfan.workers.expander import shard_count, shard_span


def test_seeded_tokens_are_tokens_the_api_accepts() -> None:
    for _ in range(50):
        assert normalise_token("ios", apns_token()) and normalise_token("android", fcm_token())
    assert len(apns_token()) == 64


@pytest.mark.parametrize(
    ("platform", "token", "stored"),
    [
        ("ios", "ab" * 32, "ab" * 32),
        ("ios", "AB" * 32, "ab" * 32),  # Apple compares hex without case: one phone, one row
        ("ios", "ab" * 31, None),
        ("ios", "zz" * 32, None),
        ("ios", "ab" * 32 + "\n", None),
        ("android", "a" * 32, "a" * 32),
        ("android", "Ab:APA91b" + "x" * 40, "Ab:APA91b" + "x" * 40),  # case kept
        ("android", "a" * 31, None),
        ("android", "has space" + "x" * 40, None),
    ],
)
def test_token_shapes(platform: str, token: str, stored: str | None) -> None:
    if stored is None:
        with pytest.raises(BadToken):
            normalise_token(platform, token)
    else:
        assert normalise_token(platform, token) == stored


@pytest.mark.parametrize(
    ("lo", "hi", "size", "count"),
    [(0, 0, 10, 0), (1, 11, 10, 1), (1, 12, 10, 2), (5, 105, 50, 2), (0, 1, 50_000, 1)],
)
def test_shards_cover_the_id_range_once(lo: int, hi: int, size: int, count: int) -> None:
    assert shard_count(lo, hi, size) == count
    spans = [shard_span(lo, hi, size, n) for n in range(count)]
    covered = [i for start, end in spans for i in range(start, end)]
    assert covered == list(range(lo, hi))
    assert all(end - start <= size for start, end in spans)
