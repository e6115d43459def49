"""The dry run checks each app's credentials against the FCM simulator: a wrong service
account key shows up in the preview, not after sending; a good one gets validate_only sends
for sampled real tokens, which the simulator validates without delivering."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from loadtest.credentials import ApnsCredentials, FcmCredentials, write_service_account
from pushfan import registry
from pushfan.db import Pool
from pushfan.settings import AppConfig, Settings
from tests.fixtures.api import api, bearer
from tests.fixtures.simulators import PROJECT, Simulator, fcm_argv

__all__ = ["api"]


@pytest.fixture(scope="module")
def fcm_sim(
    simulators: Callable[[list[str]], Simulator], fcm_creds: FcmCredentials
) -> Iterator[Simulator]:
    yield simulators(fcm_argv(fcm_creds))


@pytest.fixture
def settings(
    settings: Settings,
    fcm_sim: Simulator,
    fcm_creds: FcmCredentials,
    apns_creds: ApnsCredentials,
    tmp_path: Path,
) -> Settings:
    wrong = write_service_account(tmp_path / "wrong", PROJECT, "https://127.0.0.1/token")
    garbage = tmp_path / "AuthKey_broken.p8"
    garbage.write_text("not a key")
    apns = {"apns_topic": "com.example", "apns_team_id": apns_creds.team_id}
    good = AppConfig(
        name="good",
        fcm_project_id=PROJECT,
        fcm_service_account_file=fcm_creds.service_account_file,
        apns_key_file=apns_creds.key_file,
        apns_key_id=apns_creds.key_id,
        **apns,
    )
    bad = AppConfig(
        name="bad",
        fcm_project_id=PROJECT,
        fcm_service_account_file=wrong.service_account_file,
        apns_key_file=garbage,
        apns_key_id="BROKEN",
        **apns,
    )
    return settings.model_copy(
        update={
            "apps": [good, bad],
            "fcm_base_url": fcm_sim.url,
            "fcm_token_url": f"{fcm_sim.url}/token",
            "ca_file": fcm_sim.ca,
        }
    )


async def test_preview_reports_a_wrong_fcm_key_and_validates_good_tokens(
    api: httpx.AsyncClient, pool: Pool, fcm_sim: Simulator
) -> None:
    for app in ("good", "bad"):
        for n in range(5):
            token = f"{app}-token-{n:040d}"
            await registry.upsert(pool, registry.DeviceIn("android", app, token))
        await registry.upsert(pool, registry.DeviceIn("ios", app, f"{app}{n:060x}"[:64]))
    before = fcm_sim.stats()
    key = await bearer(pool, "alerts:send", apps=("good", "bad"))
    response = await api.post("/v1/alerts:preview", json={"title": "t", "body": "b"}, headers=key)
    assert response.status_code == 200, response.text
    checks = {(c["provider"], c["app"]): c for c in response.json()["credentials"]}
    assert checks["fcm", "good"]["ok"] and checks["fcm", "good"]["validated_tokens"] == 3
    assert not checks["fcm", "bad"]["ok"]
    assert (
        "token endpoint refused the service account: 400 invalid_grant"
        in checks["fcm", "bad"]["detail"]
    )
    assert checks["apns", "good"]["ok"] and not checks["apns", "bad"]["ok"]
    after = fcm_sim.stats()
    assert after["validated"] - before["validated"] == 3
    assert after["accepted"] == before["accepted"]  # nothing was delivered
