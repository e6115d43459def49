"""The provider interface: one batch in, outcomes out, as data rather than exceptions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from pushfan.messages import Notification


@dataclass
class SendResult:
    delivered: list[int] = field(default_factory=list)
    invalid: list[int] = field(default_factory=list)
    transient: list[int] = field(default_factory=list)
    permanent: list[int] = field(default_factory=list)
    retry_after: float | None = None  # the longest Retry-After the provider asked for
    reasons: dict[str, int] = field(default_factory=dict)  # error reason -> count

    def note(self, reason: str) -> None:
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


class Provider(Protocol):
    """Sends one batch of pushes for one app; every target ends in exactly one list."""

    name: str

    async def send(
        self, notification: Notification, device_ids: list[int], tokens: list[str]
    ) -> SendResult: ...

    async def close(self) -> None: ...
