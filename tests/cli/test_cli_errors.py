"""A command that cannot reach its store says so in one line and exits 1: no traceback, and
never the URL's password."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from pushfan.cli.main import main


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word (a store that hangs)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str) -> str:
    monkeypatch.setenv("PUSHFAN_DATABASE_URL", url)
    monkeypatch.setenv("PUSHFAN_DATABASE_TIMEOUT_S", "0.5")
    assert main(["keys", "list"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "hunter2" not in err
    return err


def test_refused_connection_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    err = run(monkeypatch, capsys, f"postgresql://pushfan:hunter2@127.0.0.1:{port}/x")
    assert err.startswith("pushfan keys: a service could not be reached: ")


def test_silent_store_times_out_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], silent_server: int
) -> None:
    err = run(monkeypatch, capsys, f"postgresql://pushfan:hunter2@127.0.0.1:{silent_server}/x")
    assert err.startswith("pushfan keys: a service did not answer in time")
