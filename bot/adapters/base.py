"""The adapter boundary: deliver a message to a person's chat; report how it failed.

Adapters depend on the message model (:mod:`bot.messages`), never the reverse: the engine,
the conversation and the domain speak :class:`~bot.messages.OutboundMessage` and never
import this package.  Each adapter renders the neutral message its own way and escapes it.
Transports raise exactly one error type, :class:`DeliveryError`, which says whether
the failure is permanent (blocked, chat gone: stop trying, tell the admins) or
transient (retry later, no sooner than ``retry_after`` when the platform said so).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from bot.messages import OutboundMessage


@dataclass(frozen=True)
class Delivery:
    message_ref: str  # the platform's id of the sent message (for replies that quote it)


@dataclass(frozen=True)
class RateLimits:
    """What the platform tolerates; the dispatcher paces itself by these (bot.pacing)."""

    overall_per_second: float
    per_chat_per_second: float
    # further documented windows as (count, seconds), e.g. WeCom's 30 a minute and 1,000 an
    # hour per member
    per_chat: tuple[tuple[int, float], ...] = ()
    overall: tuple[tuple[int, float], ...] = ()


class DeliveryError(Exception):
    def __init__(
        self,
        reason: str,
        *,
        permanent: bool,
        retry_after: float | None = None,
        new_chat_id: str | None = None,
        recipient_gone: bool = False,
        timed_out: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        # permanent because the person blocked us or the chat is gone (not a malformed message)
        self.recipient_gone = recipient_gone
        self.retry_after = retry_after
        self.new_chat_id = new_chat_id  # a group that became a supergroup (migrate_to_chat_id)
        # no answer in time: the platform may have delivered it, so a retry may repeat it
        self.timed_out = timed_out


class ChatAdapter(Protocol):
    platform: str
    limits: RateLimits | None

    async def send(self, message: OutboundMessage) -> Delivery:
        """Deliver one message or raise DeliveryError."""
        ...


REPLY_RETRY_WAIT = 0.5  # seconds before the one retry of a reply after a transient failure
MAX_REPLY_WAIT = 10.0  # a longer flood wait is not worth holding up the next update


async def send_reply(adapter: ChatAdapter, message: OutboundMessage) -> Delivery:
    """A conversation's reply (not an outbox delivery): sent once more after a short
    flood-control wait or a server hiccup -- the person is waiting for it, and what they did
    is already recorded either way."""
    try:
        return await adapter.send(message)
    except DeliveryError as exc:
        wait = exc.retry_after if exc.retry_after is not None else REPLY_RETRY_WAIT
        if exc.permanent or wait > MAX_REPLY_WAIT:
            raise
        await asyncio.sleep(wait)
        return await adapter.send(message)


@dataclass
class RecordingAdapter:
    """An in-memory adapter for tests and the demo: keeps what it was asked to send."""

    platform: str = "memory"
    limits: RateLimits | None = None
    sent: list[OutboundMessage] = field(default_factory=list)

    async def send(self, message: OutboundMessage) -> Delivery:
        self.sent.append(message)
        return Delivery(message_ref=str(len(self.sent)))
