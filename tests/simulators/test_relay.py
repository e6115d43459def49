"""Unit tests for the relay's HTTP/2 frame counting."""

from __future__ import annotations

from loadtest.simulators.relay import PREFACE, FrameCounter


def frame(kind: int, payload: bytes, stream: int = 1) -> bytes:
    return (
        len(payload).to_bytes(3, "big") + bytes([kind, 0x4]) + stream.to_bytes(4, "big") + payload
    )


STREAM = (
    PREFACE
    + frame(0x4, b"\x00" * 12, 0)  # SETTINGS
    + frame(0x1, b"h" * 40, 1)  # HEADERS: request 1
    + frame(0x0, b"{}" * 300, 1)  # DATA
    + frame(0x1, b"h" * 5, 3)  # request 2
    + frame(0x8, b"\x00\x00\x10\x00", 0)  # WINDOW_UPDATE
    + frame(0x1, b"", 5)  # request 3
)


def test_counts_one_per_headers_frame() -> None:
    assert FrameCounter().feed(STREAM) == 3


def test_counts_the_same_whatever_the_chunking() -> None:
    counter = FrameCounter()
    assert sum(counter.feed(STREAM[i : i + 1]) for i in range(len(STREAM))) == 3
    counter = FrameCounter()
    assert sum(counter.feed(STREAM[i : i + 7]) for i in range(0, len(STREAM), 7)) == 3
