"""The in-process API client fixture for every test module in tests/core."""

from tests.core.api_fixtures import api

__all__ = ["api"]
