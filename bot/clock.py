"""Time is injected: logic asks a Clock, so tests and the demo can run a simulated year."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime:
        """An aware UTC instant."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


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

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("SimulatedClock needs an aware datetime")
        self._now = instant.astimezone(UTC)
