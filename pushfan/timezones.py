"""IANA time zone names: what a device may register as its `time_zone` (the zones this
machine's tz database knows, e.g. "Europe/Paris", "America/New_York", "UTC")."""

from __future__ import annotations

import functools
import zoneinfo


@functools.cache
def known() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check(name: str) -> str:
    """`name` if it is a zone of the tz database; a ValueError (a 422) otherwise."""
    if name not in known():
        raise ValueError("time_zone must be an IANA time zone name, e.g. Europe/Paris")
    return name
