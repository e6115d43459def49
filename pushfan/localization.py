"""Content in the device's language: which of a message's locales a device gets, and the
notification rendered for one locale.

A message's `title`, `subtitle` and `body` may each be a map by locale with a required
`default` (pushfan.content). The locales travel on the wire as `Extras.locales`, keyed by
the normal form of a language tag (lower case, `-` separated). A device gets its best
match, field by field: its whole locale (`fr-ca`), then ever shorter prefixes (`fr`), then
the default. The expander batches per chosen locale, so each batch carries one rendered
language and the senders render it once per batch as before (pushfan.workers.batching).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

import msgspec

from pushfan.messages import Notification

DEFAULT = ""  # the locale key of the default content


def normal(tag: str) -> str:
    """The one form of a language tag: lower case, '-' separated (`fr_CA` -> `fr-ca`)."""
    return tag.strip().replace("_", "-").lower()


def best_match(device_locale: str | None, locales: Collection[str]) -> str:
    """The key of `locales` (normal forms) a device with this locale gets: its whole tag,
    then ever shorter prefixes; DEFAULT if none matches."""
    if not device_locale or not locales:
        return DEFAULT
    tag = normal(device_locale)
    while tag:
        if tag in locales:
            return tag
        tag = tag.rpartition("-")[0]
    return DEFAULT


def locales_of(n: Notification) -> Collection[str]:
    """The locales a notification has content for (empty: one language for everyone)."""
    return n.extras.locales.keys() if n.extras is not None else ()


def _parents(locale: str) -> Iterator[str]:
    """`fr-ca` -> `fr-ca`, `fr`."""
    while locale:
        yield locale
        locale = locale.rpartition("-")[0]


def for_locale(n: Notification, locale: str) -> Notification:
    """The notification as devices matched to `locale` get it: each of title, subtitle and
    body from the most specific of the locale and its prefixes that sets it, else the
    default; no other locale's content is carried."""
    x = n.extras
    if x is None or not x.locales:
        return n
    title, subtitle, body = n.title, x.subtitle, n.body
    for key in reversed(list(_parents(locale))):
        content = x.locales.get(key)
        if content is None:
            continue
        title = content.title or title
        subtitle = content.subtitle or subtitle
        body = content.body or body
    extras = msgspec.structs.replace(x, subtitle=subtitle, locales={})
    return msgspec.structs.replace(n, title=title, body=body, extras=extras)


def variants(n: Notification) -> Iterator[tuple[str, Notification]]:
    """(locale, notification) for the default and every locale: what the size checks and
    the dry run render."""
    yield DEFAULT, for_locale(n, DEFAULT)
    for locale in sorted(locales_of(n)):
        yield locale, for_locale(n, locale)
