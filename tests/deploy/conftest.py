"""Fixtures for the deployment tests: Settings built from a manifest's environment."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from pushfan.settings import Settings

SettingsFromEnv = Callable[[dict[str, str]], Settings]


@pytest.fixture
def settings_from_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[SettingsFromEnv]:
    """Build Settings exactly as a process would, from only the given environment."""

    def build(env: dict[str, str]) -> Settings:
        with monkeypatch.context() as m:
            for name in [n for n in os.environ if n.upper().startswith("PUSHFAN_")]:
                m.delenv(name)
            for name, value in env.items():
                m.setenv(name, value)
            return Settings()

    yield build
