"""Telegram, receive side: a python-telegram-bot Application feeding bot.conversation.

Updates become :class:`~bot.conversation.events.Inbound` events; the conversation decides;
its replies go out through the send-side :class:`~bot.adapters.telegram.TelegramAdapter`,
which renders each neutral message (HTML, split at 4,096, signed buttons, documents).
Long polling by default; in webhook mode :meth:`TelegramFrontend.routes` is a route of the
web app (bot.web) that checks Telegram's ``X-Telegram-Bot-Api-Secret-Token`` in constant
time before reading a byte of the body, and queues the update for the same Application
(PTB's own webhook server needs tornado, which this project does not otherwise use).

Updates are handled one at a time (``concurrent_updates`` off): multi-step flows keep
state, and two updates of one chat must not race.  The token comes from the settings
(the environment) and is never logged.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine as DbEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import BotCommand, Message, Update
from telegram.constants import ChatType, MessageEntityType
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.adapters.base import DeliveryError, send_reply
from bot.adapters.telegram import TelegramAdapter, _file_url_for, _redact_in_logs
from bot.adapters.telegram_links import start_link
from bot.clock import Clock
from bot.conversation.events import Attachment, Inbound, Outcome
from bot.conversation.service import ChatConfig, Conversation
from bot.messages import OutboundMessage
from bot.settings import Settings
from bot.signing import Signer, derive_secret
from bot.texts import LANGS, phrase

log = logging.getLogger("dutybot.telegram")

PLATFORM = "telegram"
COMMANDS = (
    "start",
    "help",
    "tasks",
    "overdue",
    "done",
    "digest",
    "lang",
    "cancel",
    "import",
    "invite",
    "report",
    "web",
)
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
TOAST_LIMIT = 200
SECRET_HEADER = "x-telegram-bot-api-secret-token"
MAX_UPDATE_BYTES = 1024 * 1024


def inbound(update: Update) -> Inbound | None:
    """The normalised event of an update, or None for kinds the bot does not answer."""
    chat = update.effective_chat
    if chat is None:
        return None
    user = update.effective_user
    common: dict[str, Any] = {
        "platform": PLATFORM,
        "chat_id": str(chat.id),
        "user_id": str(user.id) if user else None,
        "language": user.language_code if user else None,
        "private": chat.type == ChatType.PRIVATE,
    }
    query = update.callback_query
    if query is not None:
        message = query.message
        return Inbound(
            **common,
            callback=query.data or "",
            message_ref=str(message.message_id) if message else None,
        )
    message = update.message
    if message is None:
        return None
    text = message.text or message.caption
    command, args = _command(message)
    replied = message.reply_to_message
    return Inbound(
        **common,
        text=args if command else text,
        command=command,
        args=args,
        reply_to=str(replied.message_id) if replied else None,
        attachments=_attachments(message),
        group=message.media_group_id,
    )


def _command(message: Message) -> tuple[str | None, str]:
    text = message.text or ""
    entities = message.entities or ()
    if not entities or entities[0].type != MessageEntityType.BOT_COMMAND or entities[0].offset:
        return None, ""
    length = entities[0].length
    name = text[1:length].split("@")[0].lower()
    return name, text[length:].strip()


def _attachments(message: Message) -> tuple[Attachment, ...]:
    found = []
    if message.photo:
        largest = max(message.photo, key=lambda size: size.width * size.height)
        found.append(
            Attachment(
                "photo",
                largest.file_id,
                None,
                "image/jpeg",
                largest.file_size,
                largest.file_unique_id,
            )
        )
    if message.document:
        doc = message.document
        found.append(
            Attachment(
                "document",
                doc.file_id,
                doc.file_name,
                doc.mime_type,
                doc.file_size,
                doc.file_unique_id,
            )
        )
    return tuple(found)


class _Files:
    """Fetches what people send (evidence, schedule files) with getFile and a download."""

    def __init__(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        self._application = application

    async def fetch(self, attachment: Attachment) -> bytes:
        file = await self._application.bot.get_file(attachment.file_id)
        return bytes(await file.download_as_bytearray())


async def _read_update(request: Request, secret: bytes) -> dict[str, Any] | int:
    """The update a webhook POST carries, or the status to refuse it with.  The secret is
    compared in constant time before a byte of the body is read."""
    sent = request.headers.get(SECRET_HEADER, "").encode()
    if not hmac.compare_digest(sent, secret):
        log.warning("webhook request without the right secret token refused")
        return 403
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        return 411
    if int(length) > MAX_UPDATE_BYTES:
        return 413
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_UPDATE_BYTES:
            return 413
    try:
        data = json.loads(body)
    except ValueError:
        return 400
    return data if isinstance(data, dict) else 400


class TelegramFrontend:
    """The bot as officials meet it.  ``dutybot run`` starts and stops it around the worker,
    which sends planned messages through :attr:`adapter`."""

    def __init__(self, *, settings: Settings, db: DbEngine, clock: Clock) -> None:
        if settings.telegram_token is None:
            raise ValueError("TELEGRAM_TOKEN is not set")
        token = settings.telegram_token.get_secret_value()
        _redact_in_logs(token)
        self.settings = settings
        secret = (
            settings.callback_secret.get_secret_value()
            if settings.callback_secret
            else derive_secret(token, "callback")
        )
        self.signer = Signer(secret)
        base_file_url = settings.telegram_base_file_url or _file_url_for(settings.telegram_base_url)
        timeouts = {
            "connect_timeout": settings.telegram_connect_timeout,
            "read_timeout": settings.telegram_read_timeout,
            "write_timeout": settings.telegram_write_timeout,
            "pool_timeout": settings.telegram_pool_timeout,
        }
        self.adapter = TelegramAdapter(
            token,
            base_url=settings.telegram_base_url,
            base_file_url=base_file_url,
            encode=self.signer.encode,
            **timeouts,
        )
        builder = (
            ApplicationBuilder()
            .token(token)
            .base_url(settings.telegram_base_url)
            .base_file_url(base_file_url)
            .connect_timeout(settings.telegram_connect_timeout)
            .read_timeout(settings.telegram_read_timeout)
            .write_timeout(settings.telegram_write_timeout)
            .pool_timeout(settings.telegram_pool_timeout)
            .get_updates_connect_timeout(settings.telegram_connect_timeout)
            .get_updates_read_timeout(settings.telegram_read_timeout)
            .get_updates_pool_timeout(settings.telegram_pool_timeout)
            .local_mode(settings.telegram_local_mode)
            .concurrent_updates(False)
            .job_queue(None)
        )
        self.webhook_path: str | None = None
        if settings.telegram_mode == "webhook":
            if not settings.telegram_webhook_url:
                raise ValueError("webhook mode needs DUTYBOT_TELEGRAM_WEBHOOK_URL")
            builder = builder.updater(None)
            webhook_secret = (
                settings.telegram_webhook_secret.get_secret_value()
                if settings.telegram_webhook_secret
                else derive_secret(token, "webhook").hex()
            )
            if not webhook_secret:  # an empty secret would let anyone post updates
                raise ValueError("a webhook needs a non-empty secret token")
            self._webhook_secret = webhook_secret
            self.webhook_path = urlsplit(settings.telegram_webhook_url).path or "/"
        self.application = builder.build()
        self.username = settings.telegram_bot_username
        self.conversation = Conversation(
            db=db,
            clock=clock,
            signer=self.signer,
            platform=PLATFORM,
            config=ChatConfig(
                lang=settings.lang,
                invite_ttl=_hours(settings.invite_ttl_hours),
                state_ttl=_hours(settings.conversation_ttl_hours),
                evidence_dir=Path(settings.evidence_dir) if settings.evidence_dir else None,
                evidence_max_bytes=settings.evidence_max_bytes,
                horizon_days=settings.horizon_days,
                web_url=settings.web_url,
                signin_minutes=settings.web_signin_minutes,
            ),
            files=_Files(self.application),
            invite_link=self.invite_link,
        )
        private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
        app = self.application
        app.add_handler(CommandHandler(list(COMMANDS), self._on_update, filters=private))
        app.add_handler(CallbackQueryHandler(self._on_update))
        app.add_handler(
            MessageHandler(
                private & (filters.TEXT | filters.PHOTO | filters.Document.ALL), self._on_update
            )
        )
        app.add_error_handler(self._on_error)
        self._started = False

    def routes(self) -> list[Any]:
        """In webhook mode, the webhook's path on the web app (bot.web); polling needs none."""
        if self.webhook_path is None:
            return []
        return [Route(self.webhook_path, self._webhook, methods=["POST"], name="telegram")]

    async def _webhook(self, request: Request) -> Response:
        found = await _read_update(request, self._webhook_secret.encode())
        if isinstance(found, int):
            return Response(status_code=found)
        if not self._started:  # not started in this process: Telegram sends it again
            return Response(status_code=503)
        await self._queue_update(found)
        return Response(status_code=200)

    def invite_link(self, token: str) -> str:
        if not self.username:
            raise RuntimeError("the bot username is not known yet")
        return start_link(self.username, token)

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Check the token (getMe), register commands, then poll or listen; returns at once."""
        app = self.application
        await self.adapter.start()
        await app.initialize()
        self.username = self.username or app.bot.username
        await self._register_commands()
        await app.start()
        if self.webhook_path is not None:
            await app.bot.set_webhook(
                url=str(self.settings.telegram_webhook_url),
                secret_token=self._webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
            )
            log.info("webhook set; updates arrive at %s on the web app", self.webhook_path)
        else:
            assert app.updater is not None
            await app.updater.start_polling(
                poll_interval=self.settings.telegram_poll_interval,
                timeout=int(self.settings.telegram_poll_timeout),
                allowed_updates=ALLOWED_UPDATES,
                error_callback=self._on_polling_error,
            )
            log.info("polling for updates")
        self._started = True

    async def stop(self) -> None:
        """Finish the update in hand, stop fetching, close connections."""
        app = self.application
        self._started = False
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()
        await self.adapter.stop()
        self._started = False

    async def _register_commands(self) -> None:
        """setMyCommands in Chinese (the default and zh) and English."""
        for lang, codes in ((self.settings.lang, (None,)), ("zh-CN", ("zh",)), ("en", ("en",))):
            commands = [BotCommand(name, phrase("chat_commands", name, lang)) for name in COMMANDS]
            for code in codes:
                try:
                    await self.application.bot.set_my_commands(commands, language_code=code)
                except TelegramError as exc:  # cosmetic: never keep the bot from starting
                    log.warning("setMyCommands(%s) failed: %s", code, type(exc).__name__)

    async def _queue_update(self, data: dict[str, Any]) -> None:
        update = Update.de_json(data, self.application.bot)
        await self.application.update_queue.put(update)

    # ---- updates -------------------------------------------------------------------------

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        event = inbound(update)
        if event is None:
            return
        try:
            outcome = await self.conversation.handle(event)
        except Exception:
            log.exception("conversation failed on an update from chat %s", event.chat_id)
            lang = self.settings.lang if self.settings.lang in LANGS else "zh-CN"
            outcome = Outcome(toast=phrase("chat_toasts", "failed", lang)).say("chat_error", lang)
        await self._deliver(update, event, outcome)

    async def _deliver(self, update: Update, event: Inbound, outcome: Outcome) -> None:
        bot = self.application.bot
        if update.callback_query is not None:  # always answered, or the client spins
            with contextlib.suppress(TelegramError):
                await update.callback_query.answer(
                    text=(outcome.toast or "")[:TOAST_LIMIT] or None, show_alert=outcome.alert
                )
        for ref in dict.fromkeys(r for r in outcome.clear_buttons if r and r.isdigit()):
            with contextlib.suppress(TelegramError):  # already gone or unchanged: fine
                await bot.edit_message_reply_markup(
                    chat_id=event.chat_id, message_id=int(ref), reply_markup=None
                )
        for say in outcome.says:  # rendered, split and signed by the send-side adapter
            try:
                await self._reply(OutboundMessage(event.chat_id, say.message))
            except (DeliveryError, TelegramError) as exc:
                log.warning("reply to chat %s failed: %s", event.chat_id, _reason(exc))

    async def _reply(self, message: OutboundMessage) -> None:
        """Send a reply, once more after a short wait (bot.adapters.base.send_reply)."""
        await send_reply(self.adapter, message)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("error while handling an update: %s", _reason(context.error))

    def _on_polling_error(self, error: TelegramError) -> None:
        log.warning("polling: %s", _reason(error))


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown"
    if isinstance(exc, DeliveryError):
        return exc.reason
    return f"{type(exc).__name__}: {exc}"


def _hours(value: float) -> timedelta:
    return timedelta(hours=value)


def frontend(*, settings: Settings, db: DbEngine, clock: Clock) -> TelegramFrontend:
    """The registry's entry point (bot.adapters.PLATFORMS)."""
    return TelegramFrontend(settings=settings, db=db, clock=clock)
