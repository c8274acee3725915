"""DingTalk, the running robot: the registry's entry point (``frontend``), its receive loop and
replies, and the directory hook of ``dutybot bindings`` (``resolver``).

- receive (stream.py): the official ``dingtalk-stream`` SDK over one outgoing websocket;
  robot messages and card callbacks become :class:`~bot.conversation.events.Inbound` events,
  handled one at a time by the conversation (multi-step flows keep state);
- send (adapter.py, render.py, openapi.py): the robot's 1:1 messages through the OpenAPI
  over httpx, markdown or an action card whose buttons carry the signed actions;
- directory (directory.py): userids declared in the schedule, or mobiles looked up, for
  ``dutybot bindings --resolve``.

The client secret signs nothing but is a credential: never logged (the settings hold it as a
``SecretStr``); button data is signed with ``DUTYBOT_CALLBACK_SECRET`` or a key derived from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import Engine as DbEngine

from bot.adapters.base import DeliveryError
from bot.adapters.dingtalk.adapter import PLATFORM, DingTalkAdapter
from bot.adapters.dingtalk.directory import Directory
from bot.adapters.dingtalk.openapi import OpenApi
from bot.adapters.dingtalk.stream import StreamClient
from bot.clock import Clock
from bot.conversation.base import ChatConfig
from bot.conversation.events import Attachment, Inbound, Outcome
from bot.conversation.service import Conversation
from bot.settings import Settings
from bot.signing import Signer, derive_secret
from bot.texts import LANGS, phrase

if TYPE_CHECKING:
    from bot.messages import OutboundMessage

log = logging.getLogger("dutybot.dingtalk")

RETRY_WAIT = 0.5  # seconds before the one retry of a reply after a transient failure
MAX_REPLY_WAIT = 10.0  # a longer wait is not worth holding up the next event


def open_api(settings: Settings) -> OpenApi:
    if settings.dingtalk_client_id is None or settings.dingtalk_client_secret is None:
        raise ValueError("DingTalk needs DUTYBOT_DINGTALK_CLIENT_ID and …_CLIENT_SECRET")
    return OpenApi(
        client_id=settings.dingtalk_client_id,
        client_secret=settings.dingtalk_client_secret.get_secret_value(),
        robot_code=settings.dingtalk_robot_code or settings.dingtalk_client_id,
        api_base=settings.dingtalk_api_base,
        oapi_base=settings.dingtalk_oapi_base,
        timeout=settings.dingtalk_timeout,
    )


def signer_for(settings: Settings) -> Signer:
    if settings.callback_secret is not None:
        return Signer(settings.callback_secret.get_secret_value())
    assert settings.dingtalk_client_secret is not None
    return Signer(derive_secret(settings.dingtalk_client_secret.get_secret_value(), "callback"))


class _Files:
    """Evidence and schedule files a person sent the robot: fetched at once by downloadCode
    (the code and its link are temporary)."""

    def __init__(self, api: OpenApi, max_bytes: int) -> None:
        self._api, self._max = api, max_bytes

    async def fetch(self, attachment: Attachment) -> bytes:
        return await self._api.download(attachment.file_id, max_bytes=self._max)


class DingTalkFrontend:
    """The robot as officials meet it.  ``dutybot run`` starts and stops it around the worker,
    which sends planned messages through :attr:`adapter`."""

    def __init__(self, *, settings: Settings, db: DbEngine, clock: Clock) -> None:
        self.settings = settings
        self.api = open_api(settings)
        self.signer = signer_for(settings)
        self.adapter = DingTalkAdapter(self.api, clock=clock, encode=self.signer.encode)
        self.conversation = Conversation(
            db=db,
            clock=clock,
            signer=self.signer,
            platform=PLATFORM,
            config=ChatConfig.from_settings(settings),
            files=_Files(self.api, settings.evidence_max_bytes),
            invite_link=lambda token: phrase("dingtalk", "invite", settings.lang, token=token),
        )
        self.events: asyncio.Queue[Inbound] = asyncio.Queue()
        self._http: httpx.AsyncClient | None = None
        self.stream: StreamClient | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def routes(self) -> list[Any]:
        """Stream mode pulls its events over an outgoing websocket: nothing to mount."""
        return []

    async def start(self) -> None:
        """Connect to the Stream gateway in the background; returns at once."""
        assert self.settings.dingtalk_client_id and self.settings.dingtalk_client_secret
        self._stop = asyncio.Event()
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(self.settings.dingtalk_timeout))
        self.stream = StreamClient(
            client_id=self.settings.dingtalk_client_id,
            client_secret=self.settings.dingtalk_client_secret.get_secret_value(),
            gateway=self.settings.dingtalk_stream_base,
            http=self._http,
            queue=self.events,
        )
        self._tasks = [
            asyncio.create_task(self.stream.run(self._stop)),
            asyncio.create_task(self._handle_events()),
        ]
        log.info("DingTalk Stream client started")

    async def stop(self) -> None:
        """Stop reading, finish the event in hand (bounded), close connections."""
        self._stop.set()
        if self._tasks:
            reader, handler = self._tasks
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reader, timeout=5)
            handler.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await handler
        self._tasks = []
        if self._http is not None:
            await self._http.aclose()
        await self.adapter.stop()

    async def _handle_events(self) -> None:
        """One event at a time: two messages of one chat must not race through a flow."""
        while True:
            event = await self.events.get()
            try:
                outcome = await self.conversation.handle(event)
            except Exception:
                log.exception("conversation failed on an event from %s", event.chat_id)
                lang = self.settings.lang if self.settings.lang in LANGS else "zh-CN"
                outcome = Outcome(toast=phrase("chat_toasts", "failed", lang)).say(
                    "chat_error", lang
                )
            await self._deliver(event, outcome)

    async def _deliver(self, event: Inbound, outcome: Outcome) -> None:
        """The replies, as robot messages.  DingTalk has no toast: a toast alone (a refusal,
        a stale button) is said as a short message; beside replies it adds nothing.
        Sent messages cannot lose their buttons; a stale one answers that it is done."""
        from bot.messages import Message, OutboundMessage

        messages = [say.message for say in outcome.says]
        if not messages and outcome.toast:
            lang = self.conversation.config.lang
            messages = [Message(kind="toast", lang=lang, body=(outcome.toast,))]
        for message in messages:
            try:
                await self._reply(OutboundMessage(event.chat_id, message))
            except DeliveryError as exc:
                log.warning("reply to %s failed: %s", event.chat_id, exc.reason)

    async def _reply(self, message: OutboundMessage) -> None:
        """Send a reply, once more after a short wait: the person is waiting for it, and
        what they did is recorded either way."""
        try:
            await self.adapter.send(message)
        except DeliveryError as exc:
            wait = exc.retry_after if exc.retry_after is not None else RETRY_WAIT
            if exc.permanent or wait > MAX_REPLY_WAIT:
                raise
            await asyncio.sleep(wait)
            await self.adapter.send(message)


def frontend(*, settings: Settings, db: DbEngine, clock: Clock) -> DingTalkFrontend:
    """The registry's entry point (bot.adapters.PLATFORMS)."""
    return DingTalkFrontend(settings=settings, db=db, clock=clock)


def resolver(settings: Settings) -> Directory | None:
    """The directory lookup of ``dutybot bindings --resolve`` (bot.bindings)."""
    if settings.dingtalk_client_id is None or settings.dingtalk_client_secret is None:
        return None
    return Directory(open_api(settings))
