"""Shared fixtures: every store test runs on SQLite and on PostgreSQL, each in its own database.

PostgreSQL tests use a fresh schema per test on the server named by DUTYBOT_TEST_PG_URL
(default: the project machine's postgres@127.0.0.1:5432/test).  In CI (CI=true) an
unreachable server fails the run; elsewhere those tests are skipped, loudly.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, create_engine, text

from bot.store.db import open_store
from tests.fakes.databases import PG_URL as DEFAULT_PG_URL
from tests.fakes.databases import scratch_database

ROOT = Path(__file__).resolve().parent.parent
SCHEDULES = ROOT / "schedules"
SHANGHAI = ZoneInfo("Asia/Shanghai")
PG_URL = os.environ.get("DUTYBOT_TEST_PG_URL", DEFAULT_PG_URL)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

_pg_state: dict[str, str | None] = {}


def _pg_unreachable() -> str | None:
    """None when PostgreSQL answers, else why not (checked once per run)."""
    if "error" not in _pg_state:
        try:
            engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(text("select 1"))
            engine.dispose()
            _pg_state["error"] = None
        except Exception as exc:  # any failure means "unreachable"
            _pg_state["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return _pg_state["error"]


def local(*args: int) -> datetime:
    """An aware Asia/Shanghai datetime, for readable tests."""
    return datetime(*args, tzinfo=SHANGHAI)


@contextmanager
def fresh_database(kind: str, folder: Path) -> Iterator[str]:
    """A URL to an empty database of its own: a SQLite file, or a new PostgreSQL schema."""
    if kind != "sqlite" and (error := _pg_unreachable()):
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_URL} is unreachable in CI: {error}")
        pytest.skip(f"PostgreSQL UNREACHABLE at {PG_URL} ({error}); these tests did NOT run")
    with scratch_database(kind, PG_URL, folder) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = open_store(db_url)
    yield engine
    engine.dispose()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    error = _pg_state.get("error")
    if error:
        terminalreporter.write_line(
            f"WARNING: PostgreSQL was unreachable ({error}); PostgreSQL variants were skipped.",
            red=True,
            bold=True,
        )


async def until(check: Callable[[], object], what: str, timeout: float = 10) -> None:
    """Wait, without blocking the event loop, until ``check()`` is true: a test waits for
    what it expects, not for a fixed time (the timeout only ends a test that would hang)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
