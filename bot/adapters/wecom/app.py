"""WeCom, receive side: callbacks in, the conversation decides, replies out as app messages.

Each verified event (bot.adapters.wecom.callback) becomes an
:class:`~bot.conversation.events.Inbound`: text (``/命令`` and ``绑定 <邀请码>`` are commands),
an image or a video (evidence, downloaded at once with ``/cgi-bin/media/get`` -- media ids
expire after three days -- and kept in the evidence folder), and a card button click
(``template_card_event``: its EventKey is the signed button data, its TaskId names the card).
Events are handled one at a time, as on Telegram: multi-step flows keep state.  The request
is answered when the event is recorded, so a crash before that makes WeCom send it again.

After an action the cards it settles are updated (更新模版卡片消息) with the response code of
the click event (or of the send): their buttons become one unclickable label, so a pressed card
shows what happened and cannot be pressed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine as DbEngine

from bot.adapters.base import send_reply
from bot.adapters.wecom.adapter import WeComAdapter
from bot.adapters.wecom.api import WeComApi
from bot.adapters.wecom.callback import Callback
from bot.adapters.wecom.crypto import WeComCrypto
from bot.clock import Clock
from bot.conversation.events import Attachment, Inbound, Outcome
from bot.conversation.service import ChatConfig, Conversation
from bot.messages import Message, OutboundMessage
from bot.settings import Settings
from bot.signing import Signer, derive_secret
from bot.texts import LANGS, phrase, render

log = logging.getLogger("dutybot.wecom")

PLATFORM = "wecom"
DEFAULT_EVIDENCE_DIR = Path("evidence")
_BIND = re.compile(r"^\s*(?:绑定|bind|/start)\s+(\S{8,64})\s*$", re.IGNORECASE)


def inbound(fields: dict[str, str]) -> Inbound | None:
    """The normalised event of a callback, or None for kinds the bot does not answer."""
    userid = fields.get("FromUserName", "")
    if not userid:
        return None
    common: dict[str, Any] = {"platform": PLATFORM, "chat_id": userid, "user_id": userid}
    kind = fields.get("MsgType", "")
    if kind == "event":
        if fields.get("Event") != "template_card_event":
            return None  # entering the app, location reports...: nothing to answer
        return Inbound(
            **common, callback=fields.get("EventKey", ""), message_ref=fields.get("TaskId")
        )
    if kind == "text":
        text = fields.get("Content", "")
        bind = _BIND.match(text)
        if bind:
            return Inbound(**common, command="start", args=bind.group(1))
        if text.startswith("/") and len(text) > 1:
            name, _, args = text[1:].partition(" ")
            return Inbound(**common, command=name.lower(), args=args.strip(), text=args.strip())
        return Inbound(**common, text=text)
    media_id, msg_id = fields.get("MediaId", ""), fields.get("MsgId") or None
    if kind == "image" and media_id:
        photo = Attachment("photo", media_id, None, "image/jpeg", None, msg_id)
        return Inbound(**common, attachments=(photo,))
    if kind == "video" and media_id:
        video = Attachment("document", media_id, f"video-{msg_id}.mp4", "video/mp4", None, msg_id)
        return Inbound(**common, attachments=(video,))
    if kind == "file" and media_id:  # not among the documented kinds; taken if it comes
        name = fields.get("FileName") or fields.get("Title") or None
        return Inbound(**common, attachments=(Attachment("document", media_id, name, None),))
    if kind == "link":
        link = (fields.get("Title"), fields.get("Url"))
        return Inbound(**common, text=" ".join(part for part in link if part))
    return Inbound(**common)  # voice, location: answered "not understood"


class _Files:
    """Downloads what people send, within the evidence size limit."""

    def __init__(self, api: WeComApi, max_bytes: int) -> None:
        self._api, self._max = api, max_bytes

    async def fetch(self, attachment: Attachment) -> bytes:
        media = await self._api.download(attachment.file_id, max_bytes=self._max)
        return media.content


def _secret(value: Any) -> str:
    return value.get_secret_value() if value is not None else ""


class WeComFrontend:
    """The app as officials meet it; ``dutybot run`` sends planned messages via
    :attr:`adapter`, and the web app mounts :meth:`routes` (the callback URL)."""

    def __init__(self, *, settings: Settings, db: DbEngine, clock: Clock) -> None:
        if not settings.wecom_corp_id or settings.wecom_secret is None:
            raise ValueError("WeCom needs DUTYBOT_WECOM_CORP_ID and DUTYBOT_WECOM_SECRET")
        if settings.wecom_agent_id is None:
            raise ValueError("WeCom needs DUTYBOT_WECOM_AGENT_ID")
        secret = _secret(settings.wecom_secret)
        self.settings, self.db, self.clock = settings, db, clock
        self.lang = settings.lang if settings.lang in LANGS else "zh-CN"
        signing = _secret(settings.callback_secret) or derive_secret(secret, "callback")
        self.signer = Signer(signing)
        self.api = WeComApi(
            corp_id=settings.wecom_corp_id,
            secret=secret,
            base_url=settings.wecom_api_base,
            timeout=settings.wecom_timeout,
        )
        self.adapter = WeComAdapter(
            self.api,
            agent_id=settings.wecom_agent_id,
            clock=clock,
            encode=self.signer.encode,
            account_limit=settings.wecom_account_limit,
            lang=self.lang,
        )
        evidence = Path(settings.evidence_dir) if settings.evidence_dir else DEFAULT_EVIDENCE_DIR
        self.evidence_dir = evidence
        self.conversation = Conversation(
            db=db,
            clock=clock,
            signer=self.signer,
            platform=PLATFORM,
            config=ChatConfig(
                lang=self.lang,
                invite_ttl=timedelta(hours=settings.invite_ttl_hours),
                state_ttl=timedelta(hours=settings.conversation_ttl_hours),
                evidence_dir=evidence,  # always: a media id is gone after three days
                evidence_max_bytes=settings.evidence_max_bytes,
                horizon_days=settings.horizon_days,
                web_url=settings.web_url,
                signin_minutes=settings.web_signin_minutes,
            ),
            files=_Files(self.api, settings.evidence_max_bytes),
            invite_link=self.invite_link,
        )
        self.callback: Callback | None = None
        token, aes_key = _secret(settings.wecom_token), _secret(settings.wecom_aes_key)
        if token and aes_key:
            self.callback = Callback(
                crypto=WeComCrypto(token=token, aes_key=aes_key, receive_id=settings.wecom_corp_id),
                corp_id=settings.wecom_corp_id,
                agent_id=settings.wecom_agent_id,
                clock=clock,
                handle=self.on_event,
                path=settings.wecom_callback_path,
                window=settings.wecom_replay_window_seconds,
            )
        self._lock = asyncio.Lock()
        self._server: Any = None
        self._serving: asyncio.Task[None] | None = None

    def routes(self) -> list[Any]:
        """The callback URL for the web app to mount; none without DUTYBOT_WECOM_TOKEN and
        _AES_KEY (send only), nor when DUTYBOT_WECOM_LISTEN serves it from ``dutybot run``
        (so ``dutybot web`` neither mounts it nor starts a second listener)."""
        if self.callback is None or self.settings.wecom_listen:
            return []
        return self.callback.routes()

    def invite_link(self, token: str) -> str:
        """WeCom has no deep links into a self-built app: the invite is a text to send it."""
        return phrase("wecom", "bind_instruction", self.lang, token=token)

    async def start(self) -> None:
        if self.callback is None:
            log.warning("WeCom: no DUTYBOT_WECOM_TOKEN / _AES_KEY: sending only, no replies")
        if not self.settings.evidence_dir:
            log.warning("WeCom evidence kept in %s (DUTYBOT_EVIDENCE_DIR)", self.evidence_dir)
        try:
            await self.adapter.start()
        except Exception as exc:  # the sender retries; a bad secret is logged by the adapter
            log.error("WeCom token request failed at start: %s", type(exc).__name__)
        from bot.adapters.wecom.directory import bind_declared

        try:
            await bind_declared(db=self.db, api=self.api, now=self.clock.now())
        except Exception as exc:  # invites still work; the next start tries again
            log.warning("WeCom: binding declared accounts failed: %s", type(exc).__name__)
        if self.settings.wecom_listen and self.callback is not None:
            await self._listen(self.settings.wecom_listen)

    async def _listen(self, where: str) -> None:
        """Serve the callback URL from this process (DUTYBOT_WECOM_LISTEN=host:port)."""
        import uvicorn
        from starlette.applications import Starlette

        host, _, port = where.rpartition(":")
        config = uvicorn.Config(
            Starlette(routes=self.callback.routes() if self.callback else []),
            host=host or "127.0.0.1",
            port=int(port),
            log_level="warning",
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._serving = asyncio.create_task(self._server.serve())
        while not self._server.started and not self._serving.done():
            await asyncio.sleep(0.01)
        if self._serving.done():  # the port is taken, say: the error is the task's
            await self._serving
        sockets = self._server.servers[0].sockets
        self.listening = sockets[0].getsockname()[:2]
        log.info("WeCom callback URL served on %s:%d", *self.listening)

    async def stop(self) -> None:
        if self._server is not None and self._serving is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await self._serving
        await self.adapter.stop()

    # ---- events -------------------------------------------------------------------------

    async def on_event(self, fields: dict[str, str]) -> None:
        event = inbound(fields)
        if event is None:
            return
        async with self._lock:  # one event at a time: flows keep state in the store
            if event.callback is not None and event.message_ref:
                self.adapter.cards.add(event.message_ref, fields.get("ResponseCode"))
            try:
                outcome = await self.conversation.handle(event)
            except Exception:
                log.exception("conversation failed on an event from %s", event.chat_id)
                outcome = Outcome(toast=phrase("chat_toasts", "failed", self.lang)).say(
                    render("chat_error.html", self.lang)
                )
            await self.deliver(event, outcome)

    async def deliver(self, event: Inbound, outcome: Outcome) -> None:
        label = outcome.toast or phrase("wecom", "handled", self.lang)
        for ref in dict.fromkeys(r for r in outcome.clear_buttons if r):
            await self.adapter.update_card(event.chat_id, ref, label)
        messages = [say.message for say in outcome.says]
        if not messages and outcome.toast and event.callback is not None:
            # no toasts in WeCom: a refusal is a message
            messages = [Message(kind="toast", lang=self.lang, body=(outcome.toast,))]
        for message in messages:
            try:
                if message.document is not None:
                    await self.adapter.send_file(
                        event.chat_id, message.document.file_name, message.document.content
                    )
                await self._reply(OutboundMessage(event.chat_id, message))
            except Exception as exc:
                log.warning("reply to %s failed: %s", event.chat_id, type(exc).__name__)

    async def _reply(self, message: OutboundMessage) -> None:
        await send_reply(self.adapter, message)


def frontend(*, settings: Settings, db: DbEngine, clock: Clock) -> WeComFrontend:
    """The registry's entry point (bot.adapters.PLATFORMS)."""
    return WeComFrontend(settings=settings, db=db, clock=clock)
