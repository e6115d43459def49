"""Container HEALTHCHECK for the one pushfan image, whatever process kind it runs.

Reads PID 1's command line to learn the kind: `pushfan api` answers /healthz on
PUSHFAN_API_PORT; `pushfan worker ...` on PUSHFAN_METRICS_PORT (when it is not 0). Other
kinds (migrate, simulate, demo) have no health endpoint and count as healthy while running.
Standard library only: it runs beside the app, not inside it.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path


def health_url(argv: list[str], env: dict[str, str]) -> str | None:
    """The liveness URL for a process started with `argv`, or None when it has none."""
    args = [a for a in argv if not a.startswith("-")]
    kind = next((a for a in args if a in {"api", "worker", "migrate", "simulate", "demo"}), None)
    if kind == "api":
        port = env.get("PUSHFAN_API_PORT", "8000")
    elif kind == "worker":
        port = env.get("PUSHFAN_METRICS_PORT", "0")
    else:
        return None
    if port in ("", "0"):
        return None
    return f"http://127.0.0.1:{int(port)}/healthz"


def main() -> int:
    try:
        argv = Path("/proc/1/cmdline").read_bytes().decode().split("\0")
    except OSError:
        argv = []
    url = health_url(argv, dict(os.environ))
    if url is None:
        return 0
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
