"""Fixtures for the Web Push tests: the in-process API, and a development flag."""

from __future__ import annotations

import pytest

from pushfan.settings import Settings
from tests.core.api_fixtures import admin, api

__all__ = ["admin", "api", "settings_dev"]


@pytest.fixture
def settings_dev(settings: Settings) -> None:
    """Let the test's simulator host in (what PUSHFAN_WEB_PUSH_DEV_HOSTS does)."""
    settings.web_push_dev_hosts = ["127.0.0.1:8445"]
