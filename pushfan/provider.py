"""The push providers pushfan sends through, as one type.

A `Provider` is a str (StrEnum): it is what messages, queue names, settings, metric labels
and the command line carry, so "apns" on the wire and `Provider.APNS` in code are the same
value.
"""

from __future__ import annotations

import enum


class Provider(enum.StrEnum):
    APNS = "apns"  # Apple Push Notification service: iOS devices
    FCM = "fcm"  # Firebase Cloud Messaging HTTP v1: Android devices
    WEB = "web"  # Web Push (RFC 8030) to the browsers' push services


# Which provider reaches a device of each platform.
PLATFORM_PROVIDER = {"ios": Provider.APNS, "android": Provider.FCM, "web": Provider.WEB}
