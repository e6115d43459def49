"""Token formats the API accepts, the seed's synthetic tokens, and the expander's shard math."""

from __future__ import annotations

import pytest

from pushfan.api.models import TOKEN_FORMATS
from pushfan.seed import apns_token, fcm_token
from pushfan.workers.expander import shard_count, shard_span


def test_seeded_tokens_are_tokens_the_api_accepts() -> None:
    ios, _ = TOKEN_FORMATS["ios"]
    android, _ = TOKEN_FORMATS["android"]
    for _ in range(50):
        assert ios.match(apns_token()) and android.match(fcm_token())
    assert len(apns_token()) == 64


@pytest.mark.parametrize(
    ("token", "platform", "ok"),
    [
        ("ab" * 32, "ios", True),
        ("AB" * 32, "ios", True),
        ("ab" * 31, "ios", False),
        ("zz" * 32, "ios", False),
        ("a" * 32, "android", True),
        ("a" * 31, "android", False),
        ("abc:APA91b" + "x" * 40, "android", True),
        ("has space" + "x" * 40, "android", False),
    ],
)
def test_token_formats(token: str, platform: str, ok: bool) -> None:
    pattern, _ = TOKEN_FORMATS[platform]
    assert bool(pattern.match(token)) is ok


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
