"""The provider interface: one batch in, outcomes out, as data rather than exceptions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from pushfan.messages import Notification
from pushfan.outcomes import Outcome
from pushfan.provider import Provider


@dataclass
class SendResult:
    """The device ids of one batch under the provider's answer for each (pushfan.outcomes),
    plus those `stop` kept from being sent."""

    delivered: list[int] = field(default_factory=list)
    invalid: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)  # try later: the sender decides how
    failed: list[int] = field(default_factory=list)
    stopped: list[int] = field(default_factory=list)  # not sent: `stop` said so
    throttled: int = 0  # how many of the retried answers were 429s
    retry_after: float | None = None  # the longest Retry-After the provider asked for
    reasons: dict[str, int] = field(default_factory=dict)  # error reason -> count
    reason_of: dict[int, str] = field(default_factory=dict)  # refused device id -> reason

    def note(self, reason: str) -> None:
        self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def refused(
        self,
        device_id: int,
        outcome: Outcome,
        status: int,
        reason: str | None,
        retry_after: float | None = None,
    ) -> None:
        """File a push the provider did not accept under its outcome (see errors.py)."""
        said = reason or str(status)
        self.note(said)
        self.reason_of[device_id] = said
        if outcome is Outcome.INVALID:
            self.invalid.append(device_id)
        elif outcome is Outcome.RETRIED:
            self.retried.append(device_id)
            if status == 429:
                self.throttled += 1
            if retry_after is not None:
                self.retry_after = max(self.retry_after or 0.0, retry_after)
        else:
            self.failed.append(device_id)

    def merge(self, other: SendResult) -> None:
        """Fold the result of another slice of the same batch into this one."""
        self.delivered += other.delivered
        self.invalid += other.invalid
        self.retried += other.retried
        self.failed += other.failed
        self.stopped += other.stopped
        self.throttled += other.throttled
        if other.retry_after is not None:
            self.retry_after = max(self.retry_after or 0.0, other.retry_after)
        for reason, count in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count
        if other.reason_of:
            self.reason_of.update(other.reason_of)


def never() -> bool:
    return False


StopCheck = Callable[[], bool]


class ProviderClient(Protocol):
    """Sends one batch of pushes for one app; every target ends in exactly one list.

    `stop` is asked right before each push leaves; when it says True the push is not sent
    and the target goes to `stopped`: an alert cancelled or expired mid-batch, or a worker
    draining on SIGTERM, stops at once rather than after the batch."""

    name: Provider

    async def send(
        self,
        notification: Notification,
        device_ids: list[int],
        tokens: list[str],
        stop: StopCheck = never,
    ) -> SendResult: ...

    async def close(self) -> None: ...
