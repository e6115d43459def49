"""Pure parts of the per-device outcomes: batch ids, page cursors, reasons, the command."""

from __future__ import annotations

from pushfan.cli.main import build_parser
from pushfan.outcome_query import Cursor, batch_parts
from pushfan.outcome_reasons import MAX_NAMES, OVERFLOW, reason_args, reason_at
from pushfan.outcomes import Outcome

ALERT = "0f5d6a52-6f0e-4a53-9d1e-2a4a1f0c9b11"


def test_a_batch_id_names_its_shard_provider_and_app() -> None:
    assert batch_parts(f"{ALERT}:3:apns-sandbox:alpha:12") == ("3", "apns-sandbox", "alpha")
    assert batch_parts(f"{ALERT}:0:cancelled") == ("0", None, None)


def test_a_cursor_round_trips_and_refuses_anything_else() -> None:
    assert Cursor.parse(Cursor(42, 7).token()) == Cursor(42, 7)
    for bad in ("", "1", "1.", ".1", "a.1", "1.-1", "9" * 19 + ".1"):
        assert Cursor.parse(bad) is None, bad


def test_reasons_follow_the_packed_order_and_overflow_into_other() -> None:
    outcomes = {Outcome.FAILED: [9], Outcome.INVALID: [5], Outcome.DELIVERED: [1]}
    codes, names = reason_args(outcomes, {5: "Unregistered", 9: "500"})
    assert [reason_at(codes, names, i) for i in range(3)] == [None, "Unregistered", "500"]
    many = {Outcome.FAILED: list(range(300))}
    codes, names = reason_args(many, {i: f"r{i}" for i in range(300)})
    assert names is not None and len(names) == MAX_NAMES and names[-1] == OVERFLOW
    assert reason_at(codes, names, 299) == OVERFLOW


def test_the_prune_command_parses() -> None:
    args = build_parser().parse_args(["outcomes", "prune", "--batch", "50"])
    assert (args.outcomes_command, args.batch) == ("prune", 50)
