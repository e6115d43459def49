"""What became of a push: one vocabulary from the provider's answer to the ledger and metrics.

    provider answer (workers.providers.errors.classify_*)
    ├── DELIVERED     2xx: the provider accepted the push                         final
    ├── INVALID       the token is dead: the device is deactivated                final
    ├── RETRIED       try later (429, 5xx, no answer): republished through the
    │                 delay ladder, or FAILED once the attempts run out
    └── FAILED        refused for good (bad payload, wrong topic, ...)            final
    sender, before or instead of sending
    ├── EXPIRED       the alert's TTL passed before the push left                 final
    ├── CANCELLED     the alert was cancelled before the push left                final
    └── DEDUPLICATED  the device already had a final outcome: nothing sent

The values are the ledger's counter names (pushfan.progress) and the `outcome` label of
`pushfan_pushes_total` (pushfan.metrics). A device's first final outcome is its only one.
"""

from __future__ import annotations

import enum


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    INVALID = "invalid"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    RETRIED = "retried"
    DEDUPLICATED = "deduplicated"


# The outcomes that end a device's part in an alert, in the order the ledger scripts take
# them (pushfan/lua/_counters.lua).
FINAL_OUTCOMES = (
    Outcome.DELIVERED,
    Outcome.INVALID,
    Outcome.FAILED,
    Outcome.EXPIRED,
    Outcome.CANCELLED,
)
