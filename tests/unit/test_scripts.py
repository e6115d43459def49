"""The Lua script files and their loader, without Redis."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from pushfan import scripts
from pushfan.outcomes import FINAL_OUTCOMES
from pushfan.progress import COUNTERS
from pushfan.provider_rate import UNLIMITED

LUA = resources.files("pushfan") / "lua"


def lua_list(source: str, name: str) -> list[str]:
    found = re.search(rf"local {name} = \{{([^}}]*)\}}", source)
    assert found is not None, f"no {name} table"
    return re.findall(r"'([a-z_]+)'", found[1])


def test_every_script_is_a_file_found_by_name() -> None:
    assert scripts.names() == [
        "batch_begin",
        "batch_end",
        "caller_hit",
        "canary_admit",
        "counts",
        "pending",
        "plan",
        "rate_acquire",
        "rate_report",
        "rate_seed",
        "record",
        "shard_done",
    ]


@pytest.mark.parametrize("name", scripts.names())
def test_every_script_header_names_its_keys_argv_and_reply(name: str) -> None:
    header = (LUA / f"{name}.lua").read_text().split("\n-- #include", 1)[0]
    assert header.startswith(f"-- {name}: ")
    uses_keys = "KEYS[" in scripts.source(name)
    # "-- KEYS[1] ..." for a fixed list, "-- KEYS[1..n] ..." for a variable one.
    assert bool(re.search(r"^-- KEYS\[1(\.\.n)?\] ", header, re.M)) == uses_keys
    assert "-- ARGV[1]" in header and "-- Returns" in header


@pytest.mark.parametrize("name", scripts.names())
def test_includes_are_expanded_once_each(name: str) -> None:
    source = scripts.source(name)
    assert "#include" not in source
    functions = re.findall(r"local function (\w+)", source)
    assert len(functions) == len(set(functions))


def test_an_include_is_replaced_by_the_shared_file() -> None:
    source = scripts.source("batch_end")
    assert (LUA / "_ids.lua").read_text().strip() in source
    # _rate includes _now; `now` is defined once, before the functions that read it.
    assert source.count("local now =") == 1
    assert source.index("local now =") < source.index("local function rate_report")


def test_the_lua_tables_follow_the_python_order() -> None:
    source = (LUA / "_counters.lua").read_text()
    assert lua_list(source, "COUNTERS") == list(COUNTERS)
    assert lua_list(source, "OUTCOMES") == [str(o) for o in FINAL_OUTCOMES]


def test_the_lua_unlimited_rate_is_pythons() -> None:
    found = re.search(r"local UNLIMITED = (\S+)", (LUA / "_rate.lua").read_text())
    assert found is not None and float(found[1]) == UNLIMITED
