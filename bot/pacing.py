"""Pacing to a platform's documented limits: never more than N sends in any window of T seconds.

Why not aiolimiter (used before): a leaky bucket of capacity N refilling at N/T lets 2N sends
through inside one window (a full bucket, then the refill) -- the measured 60 sends in one
second against Telegram's 30/s.  A sliding log of the last N send instants is exact, small
(N timestamps per limit) and needs no library.  Several limits may apply at once (WeCom: 30 a
minute and 1,000 an hour per member).

A send holds its place in the window from the moment it starts until its answer is back
(then it counts at that instant): the platform counts what *arrives*, somewhere between the two,
and a send delayed on the way (a loaded host, a slow link) must not land in the next window with
the next 30 -- counting starts alone let 41-48 arrive inside one second of a 30/s burst.

A 429's ``retry_after`` pauses one chat; several chats answered 429 within a second mean the
platform's global limit, which pauses every chat of that platform.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

BUSY_POLL = 0.005  # seconds between looks when every place is held by a send in flight
GLOBAL_FLOOD_CHATS = 3  # distinct chats answered 429 within FLOOD_WINDOW: a platform-wide limit
FLOOD_WINDOW = 1.0


@dataclass(frozen=True)
class Limit:
    count: int
    seconds: float


class SlidingWindow:
    """At most ``limit.count`` sends in any ``limit.seconds``-long interval, wherever in its
    flight each one arrives: a send in flight holds a place, a finished one holds it until
    ``limit.seconds`` after its answer."""

    def __init__(self, limit: Limit, clock: Callable[[], float] = time.monotonic) -> None:
        if limit.count < 1 or limit.seconds <= 0:
            raise ValueError(f"a limit needs a positive count and period, got {limit}")
        self.limit = limit
        self._clock = clock
        self._sent: deque[float] = deque()
        self.in_flight = 0

    def wait_time(self, now: float) -> float:
        """Seconds until one more send fits (0 when it fits now)."""
        while self._sent and now - self._sent[0] >= self.limit.seconds:
            self._sent.popleft()
        if len(self._sent) + self.in_flight < self.limit.count:
            return 0.0
        if not self._sent:  # every place is held by a send in flight: look again soon
            return BUSY_POLL
        return max(self._sent[0] + self.limit.seconds - now, BUSY_POLL if self.in_flight else 0.0)

    def start(self) -> None:
        self.in_flight += 1

    def finish(self, now: float) -> None:
        self.in_flight = max(self.in_flight - 1, 0)
        self._sent.append(now)

    def record(self, now: float) -> None:
        """A send that took no time (started and answered at ``now``)."""
        self._sent.append(now)


class Gate:
    """Several sliding windows acquired together, plus a pause (retry_after) that holds them."""

    def __init__(self, limits: Iterable[Limit], clock: Callable[[], float]) -> None:
        self._windows = [SlidingWindow(limit, clock) for limit in limits]
        self._clock = clock
        self._lock = asyncio.Lock()
        self.paused_until = 0.0

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, self._clock() + seconds)

    async def acquire(self, also: Gate | None = None) -> None:
        """Wait until this gate (and ``also``, the platform-wide one) lets one send through,
        then hold its place in both until :meth:`release`.  Nothing awaits between the check
        and the count, so gates shared by many concurrent chats stay exact."""
        async with self._lock:
            while True:
                now = self._clock()
                gates = (self, also) if also is not None else (self,)
                wait = max(w for gate in gates for w in gate._waits(now))
                if wait <= 0:
                    for gate in gates:
                        for window in gate._windows:
                            window.start()
                    return
                await asyncio.sleep(wait)

    def release(self, also: Gate | None = None) -> None:
        """The send's answer is back: it counts at this instant from now on."""
        now = self._clock()
        for gate in (self, also) if also is not None else (self,):
            for window in gate._windows:
                window.finish(now)

    def _waits(self, now: float) -> list[float]:
        return [self.paused_until - now, *(w.wait_time(now) for w in self._windows)]


@dataclass
class Pacer:
    """One platform's pacing: an overall gate and one gate per chat."""

    overall: tuple[Limit, ...]
    per_chat: tuple[Limit, ...]
    clock: Callable[[], float] = time.monotonic
    _chats: dict[str, Gate] = field(default_factory=dict)
    _all: Gate | None = None
    _floods: deque[tuple[float, str]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self._all = Gate(self.overall, self.clock)

    def chat(self, chat_id: str) -> Gate:
        gate = self._chats.get(chat_id)
        if gate is None:
            gate = self._chats[chat_id] = Gate(self.per_chat, self.clock)
        return gate

    async def acquire(self, chat_id: str) -> None:
        """Before a send to ``chat_id``: wait for a place (call :meth:`release` after it)."""
        await self.chat(chat_id).acquire(self._all)

    def release(self, chat_id: str) -> None:
        """After a send to ``chat_id``, whatever its outcome."""
        self.chat(chat_id).release(self._all)

    def throttled(self, chat_id: str, retry_after: float) -> bool:
        """A 429 for one chat: pause it; returns True when it looks platform-wide (several
        chats throttled within a second), in which case every chat is paused."""
        now = self.clock()
        self.chat(chat_id).pause(retry_after)
        self._floods.append((now, chat_id))
        while self._floods and now - self._floods[0][0] > FLOOD_WINDOW:
            self._floods.popleft()
        if len({chat for _, chat in self._floods}) >= GLOBAL_FLOOD_CHATS:
            assert self._all is not None
            self._all.pause(retry_after)
            return True
        return False

    def paused_for(self, chat_id: str) -> float:
        """Seconds this chat must still wait because of a 429 (its own, or the platform's)."""
        now = self.clock()
        assert self._all is not None
        return max(0.0, self.chat(chat_id).paused_until - now, self._all.paused_until - now)
