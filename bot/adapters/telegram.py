"""Telegram, send side: render a neutral message as Telegram HTML and deliver it with
python-telegram-bot, or say why not.

:func:`render_html` is the one place where message text is escaped for Telegram: bold header
and title, fields as ``label：value`` lines, a blank line, the body, the items; an inline
keyboard from the message's and its items' buttons within Telegram's limits (an item whose
buttons do not fit says how to answer by command instead).

Every failure leaves as :class:`DeliveryError`, following healthchecks' Telegram transport:
a blocked bot, a deactivated user, a missing chat or a malformed message is permanent; flood
control, timeouts, network trouble and 5xx are transient; a migrated group carries its new id.

Pacing is the dispatcher's (per chat, from :attr:`TelegramAdapter.limits`). PTB's
``AIORateLimiter`` is deliberately not used: it does not pace private chats and would hide
429s that the outbox must see and record.

The bot token is a credential: it is never logged, never put in a reason, and filtered out of
the HTTP clients' and PTB's log lines that would otherwise carry it inside request URLs.
"""

from __future__ import annotations

import datetime as dtm
import html
import logging
import re
import warnings
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.warnings import PTBDeprecationWarning

from bot.adapters import telegram_http
from bot.adapters.base import Delivery, DeliveryError, RateLimits
from bot.adapters.redaction import redact_in_logs
from bot.messages import Button, Message, OutboundMessage, fit_actions, layout

__all__ = [
    "CALLBACK_DATA_LIMIT",
    "CAPTION_LIMIT",
    "DEFAULT_BASE_URL",
    "MAX_BUTTONS",
    "TEXT_LIMIT",
    "TelegramAdapter",
    "default_encode",
    "render_html",
    "split_message",
]

_LOG = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.telegram.org/bot"
TEXT_LIMIT = 4096  # Telegram counts UTF-16 code units of the parsed text; we count the raw HTML
CALLBACK_DATA_LIMIT = 64  # bytes
CAPTION_LIMIT = 1024  # a document's caption; we count the raw HTML, which is never shorter
MAX_BUTTONS = 100  # an inline keyboard's buttons
MAX_ROW = 8  # buttons in one row of an inline keyboard
_BOLD = ("header", "title")
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
# Loggers whose records can contain the token: httpx logs each request URL at INFO, PTB its
# base URL at DEBUG and a rejected token verbatim.
_TOKEN_LOGGERS = (
    "httpx",
    "telegram.Bot",
    "telegram.ext.ExtBot",
    "telegram.ext.Application",
    "telegram.ext.Updater",  # the receive side (bot.adapters.telegram_app)
    "dutybot.telegram",
    telegram_http.LOGGER_NAME,  # our HTTP transport's request lines
)


def default_encode(button: Button) -> str:
    """Unsigned placeholder until the signed encoder is injected."""
    return f"{button.action}:{button.ref}"


def render_html(message: Message) -> tuple[str, tuple[tuple[Button, ...], ...]]:
    """The message as Telegram HTML and its keyboard rows.  Every piece of text is escaped
    here and nowhere else; a header, a title and the items of a card-like bundle are bold."""
    rows, no_room = fit_actions(message, max_buttons=MAX_BUTTONS, max_per_row=MAX_ROW)
    cards = any(item.fields or item.body for item in message.items)
    out = []
    for line in layout(message, no_room=no_room):
        text = html.escape(line.text, quote=False)
        bold = line.role in _BOLD or (cards and line.role == "item")
        out.append(f"<b>{text}</b>" if bold and text else text)
    return "\n".join(out), rows


class TelegramAdapter:
    """The ChatAdapter for Telegram (send side). Use as ``async with TelegramAdapter(...)``."""

    platform = "telegram"

    def __init__(
        self,
        token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        base_file_url: str | None = None,
        encode: Callable[[Button], str] = default_encode,
        connect_timeout: float = 5.0,
        read_timeout: float = 5.0,
        write_timeout: float = 5.0,
        pool_timeout: float = 1.0,
        connection_pool_size: int = 64,  # SendPolicy.concurrency: no send waits for a socket
        keepalive_timeout: float = telegram_http.KEEPALIVE_SECONDS,
    ) -> None:
        if not token:
            raise ValueError("a Telegram bot token is required")
        _redact_in_logs(token)  # before Bot(), which logs its URL
        self.limits: RateLimits | None = RateLimits(overall_per_second=30, per_chat_per_second=1)
        self._token = token
        self._base_url = base_url
        self._encode = encode
        # aiohttp, not PTB's default httpx: the HTTP client was the ceiling (telegram_http)
        request = telegram_http.AiohttpRequest(
            connection_pool_size=connection_pool_size,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            pool_timeout=pool_timeout,
            keepalive_timeout=keepalive_timeout,
        )
        self._bot = Bot(
            token,
            base_url=base_url,
            base_file_url=base_file_url or _file_url_for(base_url),
            request=request,
        )
        self._started = False

    def __repr__(self) -> str:
        # PTB's Bot repr shows the token; ours must not.
        return f"TelegramAdapter(base_url={self._base_url!r})"

    @property
    def bot(self) -> Bot:
        """The PTB bot, for the receive side of this adapter (same token, same connections)."""
        return self._bot

    async def start(self) -> None:
        """Open the connection pool and check the token with getMe; DeliveryError if that fails."""
        if self._started:
            return
        try:
            await self._bot.initialize()
        except InvalidToken:
            await self._bot.shutdown()
            # PTB's message quotes the token; drop it and its chain.
            raise DeliveryError("bot token rejected by the Bot API", permanent=True) from None
        except Exception as exc:
            await self._bot.shutdown()
            raise self._delivery_error(exc) from exc
        self._started = True

    async def stop(self) -> None:
        await self._bot.shutdown()
        self._started = False

    async def __aenter__(self) -> TelegramAdapter:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def send(self, message: OutboundMessage) -> Delivery:
        """Send as HTML without link previews; long text goes in parts, buttons on the last.
        A document goes first, with the text as its caption when that fits."""
        text, rows = render_html(message.message)
        markup = self._keyboard(rows)
        document = message.message.document
        caption = text if document and text and len(text) <= CAPTION_LIMIT else None
        separate = document is None or (caption is None and bool(text))  # text of its own
        parts = split_message(text) if separate else []
        calls: list[Callable[[InlineKeyboardMarkup | None], Awaitable[Any]]] = []
        if document is not None:
            upload = InputFile(document.content, filename=document.file_name)
            calls.append(
                lambda keys: self._bot.send_document(
                    chat_id=message.chat_id,
                    document=upload,
                    caption=caption,
                    parse_mode=ParseMode.HTML,
                    reply_markup=keys,
                )
            )
        for part in parts:
            calls.append(
                lambda keys, part=part: self._bot.send_message(  # type: ignore[misc]
                    chat_id=message.chat_id,
                    text=part,
                    parse_mode=ParseMode.HTML,
                    link_preview_options=_NO_PREVIEW,
                    reply_markup=keys,
                )
            )
        await self.start()
        message_id = 0
        for index, call in enumerate(calls):
            last = index == len(calls) - 1
            try:
                sent = await call(markup if last else None)
            except Exception as exc:  # every failure leaves as DeliveryError
                error = self._delivery_error(exc)
                if index:  # a retry will repeat the parts already delivered
                    error = DeliveryError(
                        f"{error.reason} (after {index} of {len(calls)} parts were delivered)",
                        permanent=error.permanent,
                        retry_after=error.retry_after,
                        new_chat_id=error.new_chat_id,
                    )
                raise error from exc
            message_id = sent.message_id
        _LOG.debug("sent %d part(s) to chat %s", len(calls), message.chat_id)
        return Delivery(message_ref=str(message_id))

    def _keyboard(self, rows: tuple[tuple[Button, ...], ...]) -> InlineKeyboardMarkup | None:
        if not rows:
            return None
        keyboard: list[list[InlineKeyboardButton]] = []
        for row in rows:
            keyboard.append([])
            for button in row:
                data = self._encode(button)
                size = len(data.encode())
                if size > CALLBACK_DATA_LIMIT:
                    # Telegram would answer 400 BUTTON_DATA_INVALID: do not even try.
                    raise DeliveryError(
                        f"callback data for {button.action}:{button.ref} is {size} bytes, "
                        f"Telegram allows {CALLBACK_DATA_LIMIT}",
                        permanent=True,
                    )
                keyboard[-1].append(InlineKeyboardButton(text=button.label, callback_data=data))
        return InlineKeyboardMarkup(keyboard)

    def _delivery_error(self, exc: BaseException) -> DeliveryError:
        """The one place that decides permanent vs transient (order matters: see PTB's tree)."""
        reason = self._reason(exc)
        if isinstance(exc, RetryAfter):
            return DeliveryError(reason, permanent=False, retry_after=_retry_after_seconds(exc))
        if isinstance(exc, ChatMigrated):
            return DeliveryError(reason, permanent=True, new_chat_id=str(exc.new_chat_id))
        if isinstance(exc, Forbidden):  # blocked, deactivated, kicked, never started
            return DeliveryError(reason, permanent=True, recipient_gone=True)
        if isinstance(exc, BadRequest):  # chat not found, or a message that will never pass
            gone = "chat not found" in str(exc).lower()
            return DeliveryError(reason, permanent=True, recipient_gone=gone)
        if isinstance(exc, InvalidToken):
            # The token, not the person, is at fault: do not disable the recipient.
            _LOG.error("the Bot API rejected the bot token (401/404)")
            return DeliveryError("bot token rejected by the Bot API", permanent=False)
        if isinstance(exc, TimedOut):
            return DeliveryError(reason, permanent=False, timed_out=True)
        if isinstance(exc, NetworkError | TelegramError):  # incl. 5xx, bad JSON
            return DeliveryError(reason, permanent=False)
        _LOG.exception("unexpected error while sending to Telegram", exc_info=exc)
        return DeliveryError(reason, permanent=False)

    def _reason(self, exc: BaseException) -> str:
        text = str(exc) or type(exc).__name__
        if not text.startswith(type(exc).__name__):
            text = f"{type(exc).__name__}: {text}"
        return text.replace(self._token, "<token>")


def _retry_after_seconds(exc: RetryAfter) -> float:
    """PTB 22 gives int seconds (deprecated) or a timedelta (PTB_TIMEDELTA=1): accept both."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value: object = exc.retry_after
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    if isinstance(value, int | float):
        return float(value)
    raise TypeError(f"unexpected retry_after {value!r}")


def _file_url_for(base_url: str) -> str:
    """Self-hosted Bot API servers serve files beside the API: .../bot -> .../file/bot."""
    if base_url.endswith("/bot"):
        return base_url.removesuffix("/bot") + "/file/bot"
    if "{token}" in base_url:
        return base_url.replace("/bot{token}", "/file/bot{token}")
    return "https://api.telegram.org/file/bot"


# ---- splitting ------------------------------------------------------------------------------

_TAG = re.compile(r"<(/?)([a-zA-Z][\w-]*)[^>]*>")
_UNSPLITTABLE = re.compile(r"<[^>]*>|&#?\w+;")  # never cut inside a tag or an entity
_SOFT_BREAKS = (" ", "。", "；", "，", "、")


def _units(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _after(stack: tuple[str, ...], piece: str) -> tuple[str, ...]:
    """The open tags (their full opening text) after ``piece``."""
    opened = list(stack)
    for match in _TAG.finditer(piece):
        closing, name = match.group(1), match.group(2).lower()
        if not closing:
            opened.append(match.group())
            continue
        for i in range(len(opened) - 1, -1, -1):
            if _tag_name(opened[i]) == name:
                del opened[i:]
                break
    return tuple(opened)


def _tag_name(opening: str) -> str:
    match = _TAG.match(opening)
    return match.group(2).lower() if match else ""


def _closers(stack: tuple[str, ...]) -> str:
    return "".join(f"</{_tag_name(tag)}>" for tag in reversed(stack))


def _safe_end(piece: str, end: int) -> int:
    """Move a cut back to the start of a tag or entity it would fall inside."""
    for match in _UNSPLITTABLE.finditer(piece):
        if match.start() >= end:
            break
        if end < match.end():
            return match.start()
    return end


def _cut(piece: str, room: int) -> tuple[str, str]:
    """Split an over-long line after the last space or clause mark that fits, never inside a
    tag or an entity; hard at the limit when there is none (Chinese prose has no spaces)."""
    used = 0
    end = len(piece)
    for index, char in enumerate(piece):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > room:
            end = index
            break
    end = _safe_end(piece, end)
    soft = max(piece.rfind(mark, 0, end) for mark in _SOFT_BREAKS) + 1
    if soft > end // 2 and _safe_end(piece, soft) == soft:
        end = soft
    if end == 0:  # room smaller than one tag: take it whole rather than loop forever
        match = _UNSPLITTABLE.match(piece)
        end = match.end() if match else 1
    return piece[:end], piece[end:]


def split_message(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Parts of at most ``limit`` units, cut at line ends; tags open at a cut are closed and
    reopened so each part is valid HTML on its own."""
    if _units(text) <= limit:
        return [text]
    parts: list[str] = []
    lines = deque(text.split("\n"))
    start: tuple[str, ...] = ()  # tags open where the current part begins
    stack: tuple[str, ...] = ()  # tags open where the current part ends so far
    body: list[str] = []
    size = 0  # units of "\n".join(body)

    def flush() -> None:
        nonlocal start, body, size
        parts.append("".join(start) + "\n".join(body) + _closers(stack))
        start, body, size = stack, [], 0

    while lines:
        line = lines.popleft()
        grown = _after(stack, line)
        joined = size + (1 if body else 0) + _units(line)
        if _units("".join(start)) + joined + _units(_closers(grown)) <= limit:
            body.append(line)
            stack, size = grown, joined
            continue
        if body:
            flush()
            lines.appendleft(line)
            continue
        # One line longer than a whole part: cut it, keep the rest for the next part.
        room = limit - _units("".join(start))
        while True:
            head, tail = _cut(line, max(room, 1))
            closed = _units(_closers(_after(stack, head)))
            if room <= 1 or _units("".join(start)) + _units(head) + closed <= limit:
                break
            room -= max(closed, 1)  # the tags this head leaves open need room to be closed
        body, stack, size = [head], _after(stack, head), _units(head)
        flush()
        if tail:
            lines.appendleft(tail)
    if body:
        flush()
    # Telegram refuses a part with nothing visible (a run of blank lines at a cut).
    return [part for part in parts if _TAG.sub("", part).strip()] or parts


# ---- keeping the token out of logs ----------------------------------------------------------


def _redact_in_logs(token: str) -> None:
    redact_in_logs(token, _TOKEN_LOGGERS)
