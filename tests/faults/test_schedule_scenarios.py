"""Scheduled alerts under SIGKILL (loadtest/schedule_faults.py at a small population): the
processes running the scheduler killed around send_at, each alert fired exactly once."""

from __future__ import annotations

import json

import pytest

from loadtest import schedule_faults

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]


def test_schedulers_killed_around_send_at_fire_each_alert_exactly_once() -> None:
    result = schedule_faults.SCENARIOS["schedule_kills"](500)
    print(json.dumps(result))
    failed = [check for check, ok in result["checks"].items() if not ok]
    assert result["kills"] >= 10, result
    assert result["lost"] == 0 and result["duplicates"] == 0, result
    assert not failed, (failed, result)


def test_an_idle_stack_fires_a_scheduled_alert_within_a_second_of_its_time() -> None:
    result = schedule_faults.SCENARIOS["schedule_on_time"](500)
    print(json.dumps(result))
    failed = [check for check, ok in result["checks"].items() if not ok]
    assert not failed, (failed, result)
