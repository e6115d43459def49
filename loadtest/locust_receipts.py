"""Locust users for `POST /v1/receipts`: phones reporting that they received, displayed or
opened one alert, with their app's publishable key; a share of them replay a receipt already
sent (it must answer 202 `recorded: false`). Run through `python -m loadtest.receipts_load`,
which starts the API, seeds devices and passes `LOADTEST_*` variables.
"""

from __future__ import annotations

import random
from typing import Any

from locust import FastHttpUser, constant_throughput, events, task

EVENTS = ("received", "displayed", "opened")


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--api-key", env_var="LOADTEST_API_KEY", default="")
    parser.add_argument("--alert-id", env_var="LOADTEST_ALERT_ID", default="")
    parser.add_argument("--device-ids", env_var="LOADTEST_DEVICE_IDS", default="1-1000")
    parser.add_argument("--user-rate", env_var="LOADTEST_USER_RATE", type=float, default=50.0)


class Phone(FastHttpUser):
    def wait_time(self) -> float:
        return constant_throughput(self.environment.parsed_options.user_rate)(self)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.auth = {"Authorization": f"Bearer {options.api_key}"}
        lo, _, hi = options.device_ids.partition("-")
        self.devices = (int(lo), int(hi))
        self.alert = options.alert_id

    @task
    def receipt(self) -> None:
        body = {
            "alert_id": self.alert,
            "device_id": random.randint(*self.devices),
            "event": random.choice(EVENTS),
        }
        with self.client.post(
            "/v1/receipts",
            json=body,
            headers=self.auth,
            name="POST /v1/receipts",
            catch_response=True,
        ) as answer:
            if answer.status_code != 202:
                answer.failure(f"{answer.status_code}: {answer.text[:100]}")
