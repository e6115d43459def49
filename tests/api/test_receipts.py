"""Receipts from phones: the publishable key, idempotency, the rates in the report."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI

from pushfan import apikeys
from pushfan.db import Pool
from tests.fixtures.api import OWNER, all_routes, client

TOKEN = "cd" * 32


async def _publishable(
    pool: Pool, owner: str = OWNER, apps: tuple[str, ...] = ("alpha",)
) -> dict[str, str]:
    _, plaintext = await apikeys.create(pool, "app", ["receipts:write"], owner=owner, apps=apps)
    return {"authorization": f"Bearer {plaintext}"}


async def _alert_and_device(api: httpx.AsyncClient, pool: Pool) -> tuple[str, int, dict[str, str]]:
    _, plaintext = await apikeys.create(
        pool, "server", ["alerts:send", "devices:write"], owner=OWNER, apps=["alpha"]
    )
    key = {"authorization": f"Bearer {plaintext}"}
    device = await api.post(
        "/v1/devices", json={"platform": "ios", "app": "alpha", "token": TOKEN}, headers=key
    )
    alert = await api.post("/v1/alerts", json={"title": "t", "body": "b"}, headers=key)
    return str(alert.json()["id"]), int(device.json()["id"]), key


async def test_a_publishable_key_has_no_other_scope(pool: Pool) -> None:
    with pytest.raises(ValueError, match="publishable"):
        await apikeys.create(pool, "mixed", ["receipts:write", "alerts:send"], apps=["alpha"])


async def test_a_replayed_receipt_counts_once_and_the_report_shows_rates(
    api: httpx.AsyncClient, pool: Pool
) -> None:
    alert, device, server = await _alert_and_device(api, pool)
    phone = await _publishable(pool)
    receipt = {"alert_id": alert, "device_id": device, "event": "opened"}
    first = await api.post("/v1/receipts", json=receipt, headers=phone)
    assert first.status_code == 202 and first.json() == {"recorded": True}
    again = await api.post("/v1/receipts", json=receipt, headers=phone)
    assert again.status_code == 202 and again.json() == {"recorded": False}
    by_token = {"alert_id": alert, "token": TOKEN.upper(), "event": "received"}
    assert (await api.post("/v1/receipts", json=by_token, headers=phone)).json()["recorded"]
    report = (await api.get(f"/v1/alerts/{alert}/report", headers=server)).json()
    assert report["receipts"] == {"received": 1, "displayed": 0, "opened": 1, "confirmed": 1}


async def test_a_receipt_reaches_only_its_apps_devices_and_its_owners_alerts(
    api: httpx.AsyncClient, pool: Pool
) -> None:
    alert, device, _ = await _alert_and_device(api, pool)
    receipt = {"alert_id": alert, "device_id": device, "event": "displayed"}
    for key, expected in (
        (await _publishable(pool, apps=("beta",)), 404),  # the device is alpha's
        (await _publishable(pool, owner="other"), 404),  # the alert is another owner's
        (await _publishable(pool, apps=("alpha", "beta")), 403),  # not one app
    ):
        response = await api.post("/v1/receipts", json=receipt, headers=key)
        assert response.status_code == expected, response.text
    both = {**receipt, "token": TOKEN}
    assert (
        await api.post("/v1/receipts", json=both, headers=await _publishable(pool))
    ).status_code == 422


async def test_a_publishable_key_is_refused_by_every_other_route(app: FastAPI, pool: Pool) -> None:
    phone = await _publishable(pool)
    api = client(app)
    checked = 0
    for route in all_routes(app):
        if not route.path.startswith("/v1") or route.path == "/v1/receipts":
            continue
        url = re.sub(r"\{[^}]+\}", "1", route.path)
        for method in route.methods or ():
            body: dict[str, str] | None = {} if method == "POST" else None
            response = await api.request(method, url, json=body, headers=phone)
            assert response.status_code == 403, (method, route.path, response.text)
            checked += 1
    assert checked >= 15
