"""A device's time_zone is an IANA name, checked at registration (local-time delivery reads
it): a 422 for anything else, nothing stored."""

from __future__ import annotations

import httpx
import pytest

from pushfan.db import Pool

DEVICE = {"platform": "ios", "app": "alpha", "token": "AB" * 32}


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/New_York", "UTC", "Asia/Kolkata"])
async def test_an_iana_zone_is_stored(
    api: httpx.AsyncClient, sender_key: dict[str, str], pool: Pool, zone: str
) -> None:
    response = await api.post("/v1/devices", json={**DEVICE, "time_zone": zone}, headers=sender_key)
    assert response.status_code == 201, response.text
    assert await pool.fetchval("SELECT time_zone FROM devices") == zone


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "+02:00", "europe/paris", "CEST", ""])
async def test_anything_else_is_refused(
    api: httpx.AsyncClient, sender_key: dict[str, str], pool: Pool, zone: str
) -> None:
    response = await api.post("/v1/devices", json={**DEVICE, "time_zone": zone}, headers=sender_key)
    assert response.status_code == 422 and "IANA time zone" in response.text, response.text
    assert await pool.fetchval("SELECT count(*) FROM devices") == 0
