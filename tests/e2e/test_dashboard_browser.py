"""The dashboard in headless Chromium against a real stack: sign in, compose, estimate,
Send Global Alert, confirm, watch the bar reach 100% with the simulators' counts; cancel a
second alert midway; then no secret in any process's log or on the page.

Chromium is Debian's (`make install` puts it there); Playwright never downloads a browser.
The simulators answer each push after --latency-ms and senders keep few pushes in flight,
so an alert to 10,000 devices runs for several seconds: time to watch it and to cancel.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from loadtest.stack import Stack
from pushfan import admins, apikeys, db
from pushfan.seed import seed_devices
from pushfan.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
DEVICES = 10_000
PASSWORD = secrets.token_urlsafe(18)
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


async def _seed_with_admin(settings: Settings) -> str:
    await db.migrate(settings)
    pool = await db.create_pool(settings, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await seed_devices(conn, DEVICES, apps=["alpha", "beta"])
        await admins.create(pool, "ops", PASSWORD, role="sender")
        _, api_key = await apikeys.create(
            pool, "browser-e2e", ["alerts:send"], owner="e2e", apps=["alpha", "beta"]
        )
    finally:
        await pool.close()
    return api_key


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, str]]:
    name = f"ui_{secrets.token_hex(3)}"
    # Our own workdir: the logs outlive stop() for the secrets check.
    workdir = tmp_path_factory.mktemp(name)
    stack = Stack.create(
        name,
        apps=("alpha", "beta"),
        workdir=workdir,
        extra_env={"PUSHFAN_SENDER_CONCURRENCY": "16", "PUSHFAN_SENDER_PREFETCH": "2"},
    )
    settings = stack.settings
    try:
        api_key = asyncio.run(_seed_with_admin(settings))
        stack.start_simulators(dead_fraction=0.01, extra=["--latency-ms", "15"])
        stack.start_api()
        stack.start_workers()
        yield stack, api_key
    finally:
        stack.stop()
        stack.cleanup()


@pytest.fixture(scope="module")
def page(stack: tuple[Stack, str]) -> Iterator[Page]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        yield context.new_page()
        browser.close()


def number(text: str) -> int:
    return int(text.replace(",", ""))


def card(page: Page, title: str) -> Any:
    return page.locator("article.alert", has=page.get_by_role("heading", name=title))


def compose(page: Page, title: str) -> None:
    page.get_by_label("Title").fill(title)
    page.get_by_label("Message").fill("Take shelter now.")
    page.get_by_label("Data").fill("kind=storm")
    expect(page.locator("#estimate")).to_have_text(re.compile(r"This will reach 10,000 devices"))


def test_sign_in_send_and_watch_an_alert_to_its_end(stack: tuple[Stack, str], page: Page) -> None:
    s, _ = stack
    page.goto(f"{s.api_url}/admin")
    expect(page).to_have_url(re.compile("/admin/login$"))
    page.get_by_label("Username").fill("ops")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Compose an alert")).to_be_visible()

    compose(page, "Storm warning")
    expect(page.locator(".ios .p-title")).to_have_text("Storm warning")
    expect(page.locator(".android .p-body")).to_have_text("Take shelter now.")
    expect(page.locator(".web .p-title")).to_have_text("Storm warning")
    page.get_by_role("button", name="Send Global Alert").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("will be sent to 10,000 devices")
    dialog.get_by_role("button", name="Send to 10,000 devices").click()

    alert = card(page, "Storm warning")
    expect(alert).to_be_visible(timeout=10_000)
    expect(alert.locator("[data-stat=status]")).to_have_text("done", timeout=120_000)
    expect(alert.locator("[data-stat=percent]")).to_have_text("100%")
    bar = alert.locator("progress")
    assert bar.get_attribute("max") == str(DEVICES)
    assert bar.evaluate("b => b.value") == DEVICES
    alert_id = alert.get_attribute("data-alert")
    delivered = number(alert.locator("[data-stat=delivered]").inner_text())
    invalid = number(alert.locator("[data-stat=invalid]").inner_text())
    assert delivered + invalid == DEVICES and invalid > 0
    apns, fcm = s.sim_stats("apns", alert_id), s.sim_stats("fcm", alert_id)
    assert int(apns["accepted"]) + int(fcm["accepted"]) == delivered
    assert apns["duplicates"] == fcm["duplicates"] == 0
    expect(page.locator("#history tbody tr").first).to_contain_text("Storm warning")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-finished.png"), full_page=True)


def test_cancel_a_second_alert_midway(stack: tuple[Stack, str], page: Page) -> None:
    s, _ = stack
    audience = DEVICES - number(
        card(page, "Storm warning").locator("[data-stat=invalid]").inner_text()
    )
    page.reload()  # a fresh page counts the audience again (dead tokens are gone now)
    page.get_by_label("Title").fill("Second storm")
    page.get_by_label("Message").fill("Stay in.")
    expect(page.locator("#estimate")).to_have_text(f"This will reach {audience:,} devices")
    page.get_by_role("button", name="Send Global Alert").click()
    page.get_by_role("dialog").get_by_role("button", name=re.compile("^Send to")).click()
    alert = card(page, "Second storm")
    expect(alert.locator("[data-stat=status]")).to_have_text("sending", timeout=30_000)
    deadline = time.monotonic() + 30
    while number(alert.locator("[data-stat=delivered]").inner_text() or "0") == 0:
        assert time.monotonic() < deadline, "the second alert never started delivering"
        time.sleep(0.1)
    button = alert.get_by_role("button", name="Cancel")
    button.click()
    alert.get_by_role("button", name=re.compile("Really cancel")).click()
    status = alert.locator("[data-stat=status]")
    expect(status).to_have_text("cancelled", timeout=30_000)
    delivered = number(alert.locator("[data-stat=delivered]").inner_text())
    assert 0 < delivered < audience
    sent = s.sim_stats("apns", alert.get_attribute("data-alert"))
    sent_fcm = s.sim_stats("fcm", alert.get_attribute("data-alert"))
    # Pushes already on the wire when the cancel landed may still be accepted.
    assert int(sent["accepted"]) + int(sent_fcm["accepted"]) < audience
    page.screenshot(path=str(ARTIFACTS / "dashboard-cancelled.png"), full_page=True)


def test_advanced_fields_reach_the_previews_and_the_wire(
    stack: tuple[Stack, str], page: Page
) -> None:
    """Subtitle, badge and image show in the previews; the advanced section starts collapsed;
    "Silent push" hides every visible field; the rich alert goes out with its fields."""
    s, _ = stack
    page.goto(f"{s.api_url}/admin")
    page.get_by_label("Title").fill("Sale")
    page.get_by_label("Subheading").fill("Today only")
    page.get_by_label("Message").fill("50% off")
    page.get_by_label("Badge").fill("3")
    page.get_by_label("Image URL").fill("https://img.example.com/sale.png")
    expect(page.locator(".ios .p-subtitle")).to_have_text("Today only")
    expect(page.locator(".ios .p-badge")).to_have_text("3")
    expect(page.locator(".android .p-badge")).to_have_text("3")
    expect(page.locator(".android .p-image")).to_contain_text("sale.png")
    assert page.locator("#advanced").evaluate("d => d.open") is False
    expect(page.get_by_label("Category")).to_be_hidden()
    page.locator("#advanced summary").click()
    page.get_by_label("Category").fill("REPLY")

    page.get_by_label("Silent push").check()
    expect(page.get_by_label("Title")).to_be_hidden()
    expect(page.get_by_label("Badge")).to_be_hidden()
    expect(page.locator(".ios .banner")).to_be_hidden()
    expect(page.locator(".ios .p-silent")).to_be_visible()
    page.get_by_label("Silent push").uncheck()
    expect(page.get_by_label("Title")).to_be_visible()
    # The first alert deactivated the dead tokens: the audience is what is left.
    expect(page.locator("#estimate")).to_have_text(re.compile(r"This will reach [\d,]+ devices"))

    page.get_by_role("button", name="Send Global Alert").click()
    page.get_by_role("dialog").get_by_role("button", name=re.compile("Send to")).click()
    alert = card(page, "Sale")
    expect(alert.locator("[data-stat=status]")).to_have_text("done", timeout=120_000)
    sample = s.sim_stats("apns", alert.get_attribute("data-alert"))["samples"][0]["payload"]
    assert sample["aps"]["alert"] == {"title": "Sale", "subtitle": "Today only", "body": "50% off"}
    assert (sample["aps"]["badge"], sample["aps"]["category"]) == (3, "REPLY")
    assert sample["image_url"] == "https://img.example.com/sale.png"


def test_no_secret_reaches_a_log_or_the_page(stack: tuple[Stack, str], page: Page) -> None:
    """Key material and passwords used during the run never show in any process's output
    (API, workers, simulators) nor in the dashboard's HTML."""
    s, api_key = stack
    response = httpx.post(
        f"{s.api_url}/v1/alerts",
        json={"title": "via REST", "body": "b", "audience": {"tags": ["none"]}},
        headers={"authorization": f"Bearer {api_key}"},
    )
    assert response.status_code == 202
    httpx.post(f"{s.api_url}/v1/alerts", json={}, headers={"authorization": f"Bearer {api_key}x"})
    secrets_used = {"admin password": PASSWORD, "API key secret": api_key.split("_", 2)[2]}
    for path in (s.workdir / "credentials").rglob("*"):
        if path.is_file() and "public" not in path.name:
            text = path.read_text()
            for n, line in enumerate(text.splitlines()):
                # Each line of base64 key material, and the JSON's private_key value.
                if len(line) >= 40 and "PUBLIC" not in line:
                    secrets_used[f"{path.name} line {n}"] = line.strip()[:40]
    assert len(secrets_used) > 4
    logs = {p.name: p.read_text(errors="replace") for p in (s.workdir / "logs").glob("*.log")}
    logs["dashboard.html"] = page.content()
    assert {"api.log", "expander.log", "sender-apns-0.log"} <= set(logs)
    for where, text in logs.items():
        for what, secret in secrets_used.items():
            assert secret not in text, f"{what} appears in {where}"
