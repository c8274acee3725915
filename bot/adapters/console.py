"""The demo's chat: prints each message as its recipient would see it, buttons as text."""

from __future__ import annotations

import html
import re
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from bot.adapters.base import Delivery, OutboundMessage, RateLimits
from bot.clock import Clock
from bot.texts import phrase

_TAG = re.compile(r"</?(b|i|u|s|code|pre|a)(\s[^>]*)?>")


def plain(text: str) -> str:
    """Telegram HTML as a terminal shows it."""
    return html.unescape(_TAG.sub("", text))


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
        text = [line for line in plain(message.text).splitlines() if line.strip()]
        buttons = ["  ".join(f"[{b.label}]" for b in row) for row in message.buttons]
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
