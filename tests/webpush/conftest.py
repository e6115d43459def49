"""Fixtures for the Web Push tests only: a development flag (the in-process API and the
admin come from tests/fixtures through pytest_plugins)."""

from __future__ import annotations

import pytest

from pushfan.settings import Settings


@pytest.fixture
def settings_dev(settings: Settings) -> None:
    """Let the test's simulator host in (what PUSHFAN_WEB_PUSH_DEV_HOSTS does)."""
    settings.web_push_dev_hosts = ["127.0.0.1:8445"]
