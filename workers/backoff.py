"""How long a retry waits in the delay ladder, for every worker that republishes (the sender's
transient failures, the webhook's failed deliveries)."""

from __future__ import annotations

import random

from pushfan.settings import Settings


def backoff_s(settings: Settings, attempt: int, retry_after: float | None) -> float:
    """Capped exponential backoff with full jitter, never shorter than Retry-After."""
    ceiling = min(settings.retry_cap_s, settings.retry_base_s * 2**attempt)
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, settings.retry_cap_s)
