"""A store locked by another process slows answers down but never freezes the event loop:
the chat, the sender and the other platforms sharing the loop keep running (issue 15.7)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from bot.clock import SimulatedClock
from bot.conversation.events import Inbound
from bot.conversation.invites import redeem
from bot.conversation.service import Conversation
from bot.signing import Signer
from bot.store.db import open_store, session_scope
from tests.fakes.chat import CHATS, REMIND_DAY, seed

LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


def test_the_loop_keeps_running_while_another_process_holds_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    engine = open_store(f"sqlite:///{path}")
    tokens = seed(engine)
    with session_scope(engine) as session:
        redeem(session, token=tokens["张敏"], platform="telegram", chat_id="501", now=REMIND_DAY)
    conversation = Conversation(
        db=engine, clock=SimulatedClock(REMIND_DAY), signer=Signer(b"s"), platform="telegram"
    )
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(path), "2.0"], stdout=subprocess.PIPE, text=True
    )
    assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"

    async def scenario() -> tuple[int, float, object]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                await asyncio.sleep(0.02)
                ticks += 1

        running = asyncio.create_task(ticker())
        started = time.monotonic()
        outcome = await conversation.handle(
            # a write (the person's language): WAL lets reads through, writes wait for the lock
            Inbound("telegram", str(CHATS["张敏"]), command="lang", args="en", text="en")
        )
        waited = time.monotonic() - started
        stop.set()
        await running
        return ticks, waited, outcome

    ticks, waited, outcome = asyncio.run(scenario())
    locker.wait(timeout=10)
    assert waited >= 1.0  # the answer did wait for the lock ...
    assert ticks >= waited / 0.02 * 0.5  # ... while the loop went on (20 ms ticks)
    assert outcome.says and outcome.says[0].kind == "chat_lang_set"  # type: ignore[attr-defined]
    engine.dispose()
