"""`pushfan keys create` names an owner, apps and an expiry; `pushfan admins create` a role,
and on an existing admin it is a reset that ends the admin's sessions."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from pushfan import admins, apikeys, db
from pushfan.cli.admins import run_admins
from pushfan.cli.keys import run_keys
from pushfan.cli.main import build_parser
from pushfan.settings import Settings


@pytest.fixture
def migrated(settings: Settings) -> Iterator[Settings]:
    asyncio.run(db.migrate(settings))
    yield settings
    asyncio.run(db.drop_schema(settings))


def lookup(settings: Settings, plaintext: str) -> apikeys.ApiKey | None:
    async def go() -> apikeys.ApiKey | None:
        pool = await db.create_pool(settings, min_size=1, max_size=1)
        try:
            return await apikeys.authenticate(pool, plaintext)
        finally:
            await pool.close()

    return asyncio.run(go())


def test_keys_create_binds_owner_apps_and_expiry(
    migrated: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["keys", "create", "--name", "crm", "--scope", "alerts:send", "--owner", "team-a"]
    args = build_parser().parse_args([*argv, "--app", "alpha", "--expires-in", "2"])
    assert run_keys(migrated, args) == 0
    key = lookup(migrated, capsys.readouterr().out.splitlines()[-1])
    assert key is not None and key.owner == "team-a" and key.apps == ("alpha",)
    assert key.expires_at is not None
    assert abs(key.expires_at - datetime.now(UTC) - timedelta(days=2)) < timedelta(minutes=1)
    unknown = build_parser().parse_args([*argv, "--app", "gamma"])
    assert run_keys(migrated, unknown) == 2
    with pytest.raises(SystemExit):  # an owner and apps are required
        build_parser().parse_args(["keys", "create", "--name", "x", "--scope", "admin"])


def test_admins_create_sets_a_role_and_a_reset_keeps_it(
    migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def create(*extra: str) -> admins.Admin | None:
        monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
        argv = ["admins", "create", "--username", "ops", "--password-stdin", *extra]
        assert run_admins(migrated, build_parser().parse_args(argv)) == 0

        async def get() -> admins.Admin | None:
            pool = await db.create_pool(migrated, min_size=1, max_size=1)
            try:
                return await admins.authenticate(pool, "ops", "a long enough password")
            finally:
                await pool.close()

        return asyncio.run(get())

    first = create("--role", "sender")
    assert first is not None and first.role == "sender"
    reset = create()
    assert reset is not None and reset.role == "sender"
    assert reset.session_epoch == first.session_epoch + 1  # every earlier session ends
