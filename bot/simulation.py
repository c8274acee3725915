"""Run a worker through simulated weeks or months: the demo and the time-travel tests.

The clock jumps from one working-hours slot to the next (no sleeping); scripted events
(replies, outages) run at their instants; the nightly materialisation runs once a day.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from bot.clock import SimulatedClock
from bot.occurrences import ScheduleTime
from bot.worker import Worker

Event = Callable[[datetime], None]


@dataclass
class Timeline:
    """Scripted events by instant; several at one instant run in the order added."""

    _heap: list[tuple[datetime, int, Event]] = field(default_factory=list)
    _order: itertools.count = field(default_factory=itertools.count)

    def at(self, when: datetime, event: Event) -> None:
        heapq.heappush(self._heap, (when, next(self._order), event))

    def next_at(self) -> datetime | None:
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: datetime) -> list[Event]:
        due = []
        while self._heap and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap)[2])
        return due


def slots(st: ScheduleTime, day: date, every: timedelta) -> list[datetime]:
    """The tick instants of one working day: from the start of working hours, every ``every``."""
    if not st.calendar.is_workday(day):
        return []
    start = st.hours.day_start(day, st.tz)
    end = st.hours.day_end(day, st.tz)
    found = []
    while start < end:
        found.append(start)
        start += every
    return found


async def run(
    worker: Worker,
    clock: SimulatedClock,
    st: ScheduleTime,
    *,
    until: datetime,
    timeline: Timeline | None = None,
    every: timedelta = timedelta(hours=1),
    down: Callable[[datetime], bool] = lambda _: False,
    on_day: Callable[[date], None] | None = None,
) -> None:
    """Tick at every slot until ``until``; ``down(t)`` true means the process is not running."""
    timeline = timeline or Timeline()
    day = clock.now().astimezone(st.tz).date()
    last_day = until.astimezone(st.tz).date()
    first = True
    while day <= last_day:
        night = datetime.combine(day, time(2, 0), st.tz)
        if not first and not down(night):
            clock.set(max(clock.now(), night))
            worker.materialise()
        if on_day:
            on_day(day)
        pending = sorted(t for t in slots(st, day, every) if clock.now() <= t <= until)
        end_of_day = datetime.combine(day + timedelta(days=1), time(0, 0), st.tz)
        while True:
            event_at = timeline.next_at()
            candidates = pending[:1] + (
                [event_at] if event_at is not None and event_at < end_of_day else []
            )
            if not candidates:
                break
            instant = max(min(candidates), clock.now())
            if pending and pending[0] <= instant:
                pending.pop(0)
            clock.set(instant)
            for event in timeline.pop_due(instant):
                event(instant)
            if down(instant):
                continue
            await worker.tick()
        first = False
        day += timedelta(days=1)
    clock.set(max(clock.now(), until))
