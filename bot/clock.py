"""Time is injected: logic asks a Clock, so tests and the demo can run a simulated year."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime:
        """An aware UTC instant."""
        ...

    async def sleep_until(self, instant: datetime, wake: asyncio.Event) -> None:
        """Return at ``instant`` (by this clock), or earlier when ``wake`` is set."""
        ...


async def _wait(wake: asyncio.Event, seconds: float) -> None:
    if seconds <= 0:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), timeout=seconds)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, instant: datetime, wake: asyncio.Event) -> None:
        await _wait(wake, (instant - self.now()).total_seconds())


def as_of(at: datetime | None, default_tz: str = "Asia/Shanghai") -> datetime:
    """``--now`` on the command line (the edge, where the wall clock may be read): a naive time
    is read in the schedules' default timezone; none means now."""
    if at is None:
        return SystemClock().now()
    return at if at.tzinfo else at.replace(tzinfo=ZoneInfo(default_tz))


class SimulatedClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("SimulatedClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._moved: asyncio.Event | None = None

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self.set(self._now + delta)
        return self._now

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("SimulatedClock needs an aware datetime")
        self._now = instant.astimezone(UTC)
        moved, self._moved = self._moved, None
        if moved is not None:
            moved.set()

    async def sleep_until(self, instant: datetime, wake: asyncio.Event) -> None:
        """Simulated time passes only when a test moves it: wait for that (or ``wake``)."""
        while self._now < instant and not wake.is_set():
            if self._moved is None:
                self._moved = asyncio.Event()
            waits = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(self._moved.wait())]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()
