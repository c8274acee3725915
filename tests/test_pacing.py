"""Pacing: never more than the limit in any window, per chat and overall; 429 pauses."""

from __future__ import annotations

import asyncio
import random
import time

from bot.pacing import Limit, Pacer, SlidingWindow


def most_in_any_window(stamps: list[float], seconds: float) -> int:
    """The largest number of stamps inside any half-open interval of ``seconds``."""
    stamps = sorted(stamps)
    best, start = 0, 0
    for end, at in enumerate(stamps):
        while at - stamps[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_the_window_is_exact_on_a_fake_clock() -> None:
    window = SlidingWindow(Limit(3, 1.0))
    for t in (0.0, 0.1, 0.2):
        assert window.wait_time(t) == 0
        window.record(t)
    assert abs(window.wait_time(0.5) - 0.5) < 1e-9  # the 4th fits once the 1st is 1 s old
    assert window.wait_time(1.0) == 0


def test_overall_limit_holds_in_every_window_not_just_on_average() -> None:
    """A leaky bucket of 30 lets 60 through inside one second; the sliding log never more
    than 30 (scaled: 10 per 0.25 s, 40 sends from 8 chats)."""
    pacer = Pacer(overall=(Limit(10, 0.25),), per_chat=(Limit(100, 1.0),))
    stamps: list[float] = []

    async def chat(n: int) -> None:
        for _ in range(5):
            await pacer.acquire(f"c{n}")
            stamps.append(time.monotonic())
            pacer.release(f"c{n}")

    async def all_chats() -> None:
        await asyncio.gather(*(chat(n) for n in range(8)))

    asyncio.run(all_chats())
    assert len(stamps) == 40
    assert most_in_any_window(stamps, 0.25) <= 10
    assert stamps[-1] - stamps[0] >= 0.25 * 3 * 0.95  # 40 at 10 per window: ≥ 3 windows


def test_the_limit_holds_where_sends_arrive_however_late_each_one_travels() -> None:
    """The platform counts arrivals.  Each send here arrives at a random point of its flight
    (0-80 ms, like a loaded host): counting only starts let 41-48 of a 30/s burst arrive
    inside one second; a send holding its place until its answer keeps every window at the
    limit (scaled: 10 per 0.25 s, 60 sends from 20 chats)."""
    pacer = Pacer(overall=(Limit(10, 0.25),), per_chat=(Limit(100, 1.0),))
    rng = random.Random(13)
    arrivals: list[float] = []

    async def send(chat: str) -> None:
        await pacer.acquire(chat)
        flight = rng.uniform(0.0, 0.08)
        arrive = rng.uniform(0.0, flight)
        await asyncio.sleep(arrive)
        arrivals.append(time.monotonic())
        await asyncio.sleep(flight - arrive)
        pacer.release(chat)

    async def burst() -> None:
        async def chat(n: int) -> None:
            for _ in range(3):
                await send(f"c{n}")

        await asyncio.gather(*(chat(n) for n in range(20)))

    asyncio.run(burst())
    assert len(arrivals) == 60
    assert most_in_any_window(arrivals, 0.25) <= 10


def test_per_chat_limits_stack_like_wecoms_minute_and_hour() -> None:
    pacer = Pacer(overall=(Limit(1000, 1.0),), per_chat=(Limit(5, 0.1), Limit(8, 0.5)))
    stamps: list[float] = []

    async def burst() -> None:
        for _ in range(10):
            await pacer.acquire("one")
            stamps.append(time.monotonic())
            pacer.release("one")

    asyncio.run(burst())
    assert most_in_any_window(stamps, 0.1) <= 5
    assert most_in_any_window(stamps, 0.5) <= 8


def test_a_429_pauses_the_chat_and_several_at_once_pause_the_platform() -> None:
    now = [0.0]
    pacer = Pacer(overall=(Limit(30, 1.0),), per_chat=(Limit(1, 1.0),), clock=lambda: now[0])
    assert pacer.throttled("a", 5) is False
    assert pacer.paused_for("a") == 5 and pacer.paused_for("b") == 0
    assert pacer.throttled("b", 5) is False
    assert pacer.throttled("c", 7) is True  # three chats in one second: the global limit
    assert pacer.paused_for("zzz") == 7
    now[0] = 8.0
    assert pacer.paused_for("a") == 0 and pacer.paused_for("zzz") == 0
