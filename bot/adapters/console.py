"""The demo's chat: prints each message as its recipient would see it, buttons as text."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from bot.adapters.base import Delivery, RateLimits
from bot.clock import Clock
from bot.messages import Message, OutboundMessage, fit_actions, plain_text
from bot.texts import phrase

MAX_BUTTONS = 100  # a terminal has no limit; the same as Telegram's keeps the demo honest


def render_console(message: Message) -> tuple[list[str], list[str]]:
    """The message's text lines (no blank ones) and its buttons, one ``[label]`` row each."""
    rows, no_room = fit_actions(message, max_buttons=MAX_BUTTONS, max_per_row=MAX_BUTTONS)
    text = [line for line in plain_text(message, no_room=no_room).splitlines() if line.strip()]
    if message.document is not None:
        text.append(phrase("demo", "attachment", message.lang, name=message.document.file_name))
    buttons = ["  ".join(f"[{b.label}]" for b in row) for row in rows]
    return text, buttons


@dataclass
class ConsoleAdapter:
    clock: Clock
    out: TextIO = field(default_factory=lambda: sys.stdout)
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    lang: str = "zh-CN"
    platform: str = "console"
    limits: RateLimits | None = None
    brief: bool = False  # two lines a message instead of the whole text
    count: int = 0

    async def send(self, message: OutboundMessage) -> Delivery:
        self.count += 1
        when = self.clock.now().astimezone(self.tz).strftime("%Y-%m-%d %a %H:%M")
        header = phrase("demo", "message_header", self.lang, to=message.chat_id, when=when)
        text, buttons = render_console(message.message)
        if self.brief:
            text, buttons = text[:2], ["  ".join(buttons)] if buttons else []
        lines = [header] + ["  │ " + line for line in text + buttons]
        self.out.write("\n".join(lines) + ("\n" if self.brief else "\n\n"))
        return Delivery(message_ref=f"console-{self.count}")


@dataclass
class ConsoleFrontend:
    """``dutybot run --console``: every person's messages printed here, under their name."""

    adapter: ConsoleAdapter
    db: Any
    clock: Clock

    async def start(self) -> None:
        from bot.identities import bind_everyone
        from bot.store.db import session_scope

        with session_scope(self.db) as session:
            bind_everyone(session, platform=self.adapter.platform, now=self.clock.now())

    async def stop(self) -> None:
        return None

    def routes(self) -> list[Any]:
        return []


def console_frontend(*, settings: Any, db: Any, clock: Clock, lang: str) -> ConsoleFrontend:
    return ConsoleFrontend(ConsoleAdapter(clock, lang=lang), db, clock)
