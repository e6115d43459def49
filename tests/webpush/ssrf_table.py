"""The SSRF table: endpoints a client may try to register, and why each is refused.

Shared by the unit test (pushfan.webpush.check_endpoint) and the API test (the 422 each
gets from POST /v1/devices); README's Web Push section shows the same table.
"""

from __future__ import annotations

REFUSED: list[tuple[str, str]] = [
    # (endpoint, the reason the 422 gives)
    ("http://fcm.googleapis.com/fcm/send/abc", "must be an https URL"),
    ("ftp://fcm.googleapis.com/fcm/send/abc", "must be an https URL"),
    ("javascript:alert(1)//fcm.googleapis.com", "must be an https URL"),
    ("HTTPS://fcm.googleapis.com/fcm/send/abc", "must be an https URL"),
    ("https:///fcm/send/abc", "has no host"),
    ("https://127.0.0.1/push", "private or loopback IP address"),
    ("https://10.0.0.7/push", "private or loopback IP address"),
    ("https://192.168.1.1/push", "private or loopback IP address"),
    ("https://172.16.0.1:443/push", "private or loopback IP address"),
    ("https://169.254.169.254/latest/meta-data/", "private or loopback IP address"),
    ("https://0.0.0.0/push", "private or loopback IP address"),
    ("https://8.8.8.8/push", "is an IP address"),
    ("https://[::1]/push", "private or loopback IP address"),
    ("https://[fd00::1]/push", "private or loopback IP address"),
    ("https://[::ffff:127.0.0.1]/push", "private or loopback IP address"),
    ("https://[fe80::1%25eth0]/push", "private or loopback IP address"),
    ("https://2130706433/push", "numeric IP address spelling"),
    ("https://0x7f000001/push", "numeric IP address spelling"),
    ("https://0177.0.0.1/push", "numeric IP address spelling"),
    ("https://127.1/push", "numeric IP address spelling"),
    ("https://localhost/push", "names this machine or a private network"),
    ("https://push.localhost/push", "names this machine or a private network"),
    ("https://metadata.google.internal/computeMetadata/v1/", "this machine or a private network"),
    ("https://user:secret@fcm.googleapis.com/fcm/send/abc", "must not carry user information"),
    ("https://fcm.googleapis.com@169.254.169.254/push", "must not carry user information"),
    ("https://fcm.googleapis.com\\@evil.example/push", "control or non-ASCII characters"),
    ("https://fcm.googleapis.com/fcm/send/abc#frag", "must not have a fragment"),
    ("https://fcm.googleapis.com /fcm/send/abc", "control or non-ASCII characters"),
    ("https://fcm.googleapis.com/fcm/send/\nabc", "control or non-ASCII characters"),
    ("https://fсm.googleapis.com/fcm/send/abc", "control or non-ASCII characters"),  # Cyrillic с
    ("https://fcm%2egoogleapis.com/fcm/send/abc", "must be a plain DNS name"),
    ("https://fcm.googleapis.com./fcm/send/abc", "not a valid DNS name"),
    ("https://fcm.googleapis.com:8443/fcm/send/abc", "default https port"),
    ("https://fcm.googleapis.com:0/fcm/send/abc", "default https port"),
    ("https://fcm.googleapis.com:99999/fcm/send/abc", "not a URL"),
    ("https://evil.example/push", "is not a known push service"),
    ("https://fcm.googleapis.com.evil.example/push", "is not a known push service"),
    ("https://evilfcm.googleapis.com/push", "is not a known push service"),
    ("https://notify.windows.com/w/?token=abc", "is not a known push service"),
    ("https://xn--fm-elc.googleapis.com/push", "is not a known push service"),
    ("https://" + "a" * 2050 + ".example/push", "longer than 2048 characters"),
]

ACCEPTED = [
    "https://fcm.googleapis.com/fcm/send/dGVzdA:APA91bHtest-token_value",
    "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABfake",
    "https://wns2-par02p.notify.windows.com/w/?token=BQYAAAfake%2bvalue",
    "https://web.push.apple.com/QGuQyavXutnMH6Ig2uYOJDwA",
    "https://fcm.googleapis.com:443/fcm/send/abc",
]
