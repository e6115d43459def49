"""Every shared fixture lives in tests/fixtures/ and is registered here, once, for all tests;
test modules never import from a conftest (they import helpers from tests.fixtures.*)."""

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.api",
    "tests.fixtures.simulators",
    "tests.fixtures.providers",
    "tests.fixtures.deploy",
]
