"""Sortable encoding of app and OS versions, so `app_version >= 5.2` is one integer comparison
(and a btree range) in SQL.

`version_key("5.2.1") == 5 * 10**12 + 2 * 10**6 + 1`: up to three numeric components, each
below 10**6, missing ones are 0 ("5.2" == "5.2.0"); anything after the numeric core (a
pre-release or build suffix, a fourth component) is ignored. A version without a numeric
core, or with a component of 10**6 or more, has no key (None): comparisons never match it.
"""

from __future__ import annotations

import re

_CORE = re.compile(r"^\s*v?(\d{1,6})(?:\.(\d{1,6}))?(?:\.(\d{1,6}))?(?![\d])")
_BASE = 10**6


def version_key(version: str | None) -> int | None:
    if not version:
        return None
    match = _CORE.match(version)
    if match is None:
        return None
    major, minor, patch = (int(part or 0) for part in match.groups())
    return (major * _BASE + minor) * _BASE + patch


def parse_version(version: str) -> int:
    """The key of a version given in a filter; ValueError (a 422) when it has none."""
    key = version_key(version)
    if key is None:
        raise ValueError(f"not a version: {version!r} (expected e.g. 5.2 or 5.2.1)")
    return key
