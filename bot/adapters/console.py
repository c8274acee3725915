"""The terminal as a chat: prints each message as its recipient would see it, buttons as text;
under ``dutybot run --console`` it also reads lines typed there as answers from officials.

Every person is bound to the console under their own name (``chat_id`` = the name), so a line
``as 张敏: 已完成 会议纪要已报送`` (or ``张敏：…``) is a message from 张敏's chat, handed to the
same conversation as any platform's: a plain answer replies to the last reminder (or other
planned message) printed for 张敏 (``张敏 #3: …`` to message #3), ``/tasks`` and the other
commands work as typed, and ``[已完成]`` presses that button of the message.  Replies are
printed like any message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from bot.adapters.base import Delivery, RateLimits
from bot.clock import Clock
from bot.messages import Button, Message, OutboundMessage, fit_actions, plain_text
from bot.texts import LANGS, phrase

log = logging.getLogger("dutybot.console")

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
    numbered: bool = False  # headers show "#N", for answering one message (run --console)
    run: str = ""  # this process's mark in message refs: a restart's #1 is not the last one's
    count: int = 0
    last: dict[str, str] = field(default_factory=dict)  # chat → ref of its latest planned one
    buttons: dict[str, tuple[Button, ...]] = field(default_factory=dict)  # ref → its buttons

    def ref(self, number: int) -> str:
        return f"console-{self.run}{number}"

    async def send(self, message: OutboundMessage) -> Delivery:
        """A planned message (reminder, escalation, digest): what a plain answer replies to."""
        ref = self.show(message)
        self.last[message.chat_id] = ref
        return Delivery(message_ref=ref)

    def show(self, message: OutboundMessage) -> str:
        """Print one message; its ref, with its buttons kept for pressing by label."""
        self.count += 1
        when = self.clock.now().astimezone(self.tz).strftime("%Y-%m-%d %a %H:%M")
        if self.numbered:
            header = phrase(
                "console", "message_header", self.lang, to=message.chat_id, when=when, n=self.count
            )
        else:
            header = phrase("demo", "message_header", self.lang, to=message.chat_id, when=when)
        text, buttons = render_console(message.message)
        if self.brief:
            text, buttons = text[:2], ["  ".join(buttons)] if buttons else []
        lines = [header] + ["  │ " + line for line in text + buttons]
        self.out.write("\n".join(lines) + ("\n" if self.brief else "\n\n"))
        self.out.flush()
        ref = self.ref(self.count)
        if self.numbered:
            rows, _ = fit_actions(message.message, max_buttons=MAX_BUTTONS, max_per_row=MAX_BUTTONS)
            self.buttons[ref] = tuple(b for row in rows for b in row)
        return ref

    def say(self, key: str, /, **context: object) -> None:
        """One line of the console itself (not a message to anyone)."""
        self.out.write(phrase("console", key, self.lang, **context) + "\n")
        self.out.flush()


# as 张敏: 已完成 …   张敏：…   as 张敏 #3: [申请延期]
_LINE = re.compile(
    r"^(?:as\s+)?(?P<name>[^:：#\s][^:：#]*?)\s*(?:[#＃](?P<number>\d+))?\s*[:：]\s*(?P<text>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_COMMAND = re.compile(r"^/(?P<command>[A-Za-z_]+)(?:\s+(?P<args>.*))?$", re.DOTALL)
_PRESS = re.compile(r"^[\[【](?P<label>[^\]】]+)[\]】]$")


@dataclass(frozen=True)
class Typed:
    """One line typed at the console, read: who speaks, which message it answers, and what."""

    name: str
    number: int | None
    text: str


def read_line(line: str) -> Typed | None:
    """``as NAME[ #N]: TEXT`` or ``NAME[ #N]: TEXT``; None when the line is not of that form."""
    found = _LINE.match(line.strip())
    if found is None or not found.group("text").strip():
        return None
    number = found.group("number")
    return Typed(found.group("name").strip(), int(number) if number else None, found.group("text"))


class ConsoleFrontend:
    """``dutybot run --console``: every person's messages printed here, under their name, and
    lines typed here answered as that person (see the module docstring)."""

    def __init__(
        self,
        adapter: ConsoleAdapter,
        db: Any,
        clock: Clock,
        *,
        conversation: Any = None,
        input: TextIO | None = None,
    ) -> None:
        self.adapter, self.db, self.clock = adapter, db, clock
        self.conversation = conversation
        self.input = input
        self.lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._handler: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from bot.identities import bind_everyone
        from bot.store.db import session_scope

        with session_scope(self.db) as session:
            bind_everyone(session, platform=self.adapter.platform, now=self.clock.now())
        if self.input is not None and self.conversation is not None:
            loop = asyncio.get_running_loop()
            reader = threading.Thread(
                target=self._read, args=(loop,), name="console-input", daemon=True
            )
            reader.start()  # a blocking read of a terminal cannot be awaited: its own thread
            self._handler = asyncio.create_task(self._handle_lines())
            self.adapter.say("usage")

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self.input is not None
        with contextlib.suppress(ValueError, OSError, RuntimeError):  # closed, or loop gone
            for line in self.input:
                loop.call_soon_threadsafe(self.lines.put_nowait, line)
            loop.call_soon_threadsafe(self.lines.put_nowait, None)

    async def stop(self) -> None:
        if self._handler is not None:
            self._handler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._handler
            self._handler = None

    def routes(self) -> list[Any]:
        return []

    async def _handle_lines(self) -> None:
        """One line at a time, in order: a flow (已完成 → evidence) spans several lines."""
        while (line := await self.lines.get()) is not None:
            if not line.strip():
                continue
            try:
                await self.handle_line(line)
            except Exception:  # one bad line must not end the console
                log.exception("console input failed")
                self.adapter.say("failed")

    async def handle_line(self, line: str) -> None:
        """Read one typed line, hand it to the conversation as its person, print the replies."""
        from bot.conversation.events import Inbound

        typed = read_line(line)
        if typed is None:
            self.adapter.say("not_understood", line=line.strip())
            return
        known = await asyncio.to_thread(self._chats)
        if typed.name not in known:
            self.adapter.say("unknown_person", name=typed.name, known=sorted(known)[:10])
            return
        quoted = (
            self.adapter.ref(typed.number)
            if typed.number is not None
            else self.adapter.last.get(typed.name)
        )
        text = typed.text.strip()
        platform = self.adapter.platform
        event = Inbound(platform=platform, chat_id=typed.name, user_id=typed.name, text=text)
        if (command := _COMMAND.match(text)) is not None:
            name, args = command.group("command").lower(), (command.group("args") or "").strip()
            event = Inbound(platform, typed.name, typed.name, text, command=name, args=args)
        elif (press := _PRESS.match(text)) is not None:
            label = press.group("label").strip()
            found = [b for b in self.adapter.buttons.get(quoted or "", ()) if label in b.label]
            if len({(b.action, b.ref) for b in found}) != 1:
                self.adapter.say("no_button", label=label, count=len(found))
                return
            signed = self.conversation.signer.encode(found[0])
            event = Inbound(platform, typed.name, typed.name, callback=signed, message_ref=quoted)
        elif quoted is not None:
            event = Inbound(platform, typed.name, typed.name, text, reply_to=quoted)
        outcome = await self.conversation.handle(event)
        self._print(typed.name, outcome)

    def _chats(self) -> set[str]:
        """The console's chats (every bound person's name)."""
        from sqlmodel import col, select

        from bot.store.db import session_scope
        from bot.store.models import ChatBinding

        with session_scope(self.db) as session:
            rows = session.exec(
                select(ChatBinding.chat_id).where(
                    ChatBinding.platform == self.adapter.platform,
                    col(ChatBinding.active).is_(True),
                )
            ).all()
        return set(rows)

    def _print(self, chat: str, outcome: Any) -> None:
        """The replies as messages to that person; a toast alone (a refusal, a stale button) is
        printed as a short message, as DingTalk does."""
        messages = [say.message for say in outcome.says]
        if not messages and outcome.toast:
            lang = self.adapter.lang if self.adapter.lang in LANGS else "zh-CN"
            messages = [Message(kind="toast", lang=lang, body=(outcome.toast,))]
        for message in messages:
            self.adapter.show(OutboundMessage(chat, message))


def console_frontend(
    *,
    settings: Any,
    db: Any,
    clock: Clock,
    lang: str,
    input: TextIO | None = None,
    out: TextIO | None = None,
) -> ConsoleFrontend:
    """``dutybot run --console``: messages printed on ``out`` (stdout), lines typed on
    ``input`` (stdin) answered."""
    from bot.conversation.base import ChatConfig
    from bot.conversation.service import Conversation
    from bot.signing import Signer

    secret = settings.callback_secret
    signer = Signer(secret.get_secret_value() if secret else secrets.token_hex(32))
    adapter = ConsoleAdapter(
        clock, out=out or sys.stdout, lang=lang, numbered=True, run=f"{secrets.token_hex(3)}-"
    )
    conversation = Conversation(
        db=db,
        clock=clock,
        signer=signer,
        platform=adapter.platform,
        config=ChatConfig.from_settings(settings),
    )
    return ConsoleFrontend(adapter, db, clock, conversation=conversation, input=input or sys.stdin)
