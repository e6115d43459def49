"""`/_sim/*`: the statistics a test reads and the reset it calls; no auth, like a debug port."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import parse_qs

from loadtest.simulators.recorder import Recorder, summarise
from loadtest.simulators.rsgi import HTTPProtocol, Scope, send_json

PREFIX = "/_sim/"


async def handle_control(
    scope: Scope, proto: HTTPProtocol, recorder: Recorder, reset: Callable[[], None]
) -> None:
    path, method = scope.path, scope.method
    if path == "/_sim/stats" and method == "GET":
        collapse_id = parse_qs(scope.query_string).get("collapse_id", [None])[0]
        header = recorder.header(collapse_id)
        # numpy sorts 10^7 entries in about a second: do it off the loop, on a snapshot.
        summary = await asyncio.to_thread(summarise, recorder.snapshot(), collapse_id)
        send_json(proto, 200, summary | header)
    elif path == "/_sim/reset" and method == "POST":
        await proto()
        reset()
        send_json(proto, 200, {"reset": True})
    elif path == "/_sim/health" and method == "GET":
        send_json(proto, 200, {"ok": True})
    else:
        send_json(proto, 404, {"error": "unknown simulator control endpoint"})
