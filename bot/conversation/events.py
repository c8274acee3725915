"""What a chat platform hands the conversation, and what the conversation hands back.

Platform adapters translate their own updates into :class:`Inbound` and deliver each
:class:`Say` (as its :class:`~bot.messages.Message`, rendered their own way); nothing here
knows which platform it is talking to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.messages import Button, Document, Message, reply

Rows = tuple[tuple[Button, ...], ...]


@dataclass(frozen=True)
class Attachment:
    """A file the person sent; ``file_id`` is the platform's handle for fetching it."""

    kind: str  # photo | document
    file_id: str
    file_name: str | None = None
    mime_type: str | None = None
    size: int | None = None
    unique_id: str | None = None


@dataclass(frozen=True)
class Inbound:
    """One normalised inbound event: a command, a message, or a button press."""

    platform: str
    chat_id: str
    user_id: str | None = None
    text: str | None = None  # message text, or a file's caption
    command: str | None = None  # "start", "done" ... (lower case, no slash)
    args: str = ""  # everything after the command, as typed
    callback: str | None = None  # raw button data: verified before anything is trusted
    message_ref: str | None = None  # the message a pressed button sits on
    reply_to: str | None = None  # the message this one answers (a reply to a reminder)
    attachments: tuple[Attachment, ...] = ()
    group: str | None = None  # an album: several photos sent together, one message each
    language: str | None = None  # the client's language, for people not yet bound
    private: bool = True  # a one-to-one chat (groups are not bound to anyone)


@dataclass(frozen=True)
class Say:
    """One message back to the chat the event came from: a template kind and the data it
    shows (plain values, no store objects), in the person's language; the adapter renders
    :attr:`message`.  Tests read ``kind`` and ``context`` rather than the wording."""

    kind: str  # chat_done, chat_refusal, digest ...
    lang: str
    context: dict[str, Any] = field(default_factory=dict)
    actions: Rows = ()
    document: Document | None = None

    @property
    def message(self) -> Message:
        return reply(
            self.kind, self.context, lang=self.lang, actions=self.actions, document=self.document
        )


@dataclass
class Outcome:
    """Everything one event produces: messages, a short toast for a button press, and the
    buttons to take off messages that no longer need them."""

    says: list[Say] = field(default_factory=list)
    toast: str | None = None
    alert: bool = False  # the toast must be acknowledged (a refusal), not just flashed
    clear_buttons: list[str] = field(default_factory=list)  # message refs

    def say(self, kind: str, lang: str, /, actions: Rows = (), **context: Any) -> Outcome:
        self.says.append(Say(kind, lang, context, actions))
        return self


class FileSource(Protocol):
    """Fetches what a person sent (evidence, a schedule file) from the platform."""

    async def fetch(self, attachment: Attachment) -> bytes: ...
