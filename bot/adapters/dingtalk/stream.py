"""DingTalk's Stream mode through the official ``dingtalk-stream`` SDK: one outgoing websocket,
no public address, no inbound port (fits a government intranet).

The SDK does the protocol: frame parsing (``EventMessage`` / ``CallbackMessage`` /
``SystemMessage``), routing by topic to registered handlers, and the ACK frame each push
expects (``{code, headers: {messageId, contentType}, message, data}``).  Its
``DingTalkStreamClient.start`` loop is not used, and this is why:

- it posts to ``OPEN_CONNECTION_API``, a class constant built at import time from
  ``https://api.dingtalk.com`` (or the process-wide ``DINGTALK_OPENAPI_ENDPOINT`` variable),
  and reads it as ``DingTalkStreamClient.OPEN_CONNECTION_API`` -- a subclass attribute cannot
  change it; private deployments (专有钉钉) and the test gateway need another host;
- it opens the connection with blocking ``requests.post`` without a timeout, inside the event
  loop that also runs the sender: a hung gateway would stop every send;
- it catches ``CancelledError`` and reconnects, so it cannot be stopped cleanly.

So :class:`StreamClient` subclasses the documented client and overrides
:meth:`open_connection` (same request body, configured URL, async httpx with a timeout) and
runs its own small connect-and-read loop; everything else -- handlers, ``route_message``,
ACKs -- is the SDK's.

Topics: robot messages ``/v1.0/im/bot/messages/get`` (``ChatbotMessage.TOPIC``), card
callbacks ``/v1.0/card/instances/callback`` (``Card_Callback_Router_Topic``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import platform
import re
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus

import dingtalk_stream
import httpx
import websockets
from dingtalk_stream import AckMessage, CallbackHandler, CallbackMessage, ChatbotMessage
from dingtalk_stream.card_callback import Card_Callback_Router_Topic
from dingtalk_stream.version import VERSION_STRING

from bot.conversation.events import Attachment, Inbound

log = logging.getLogger("dutybot.dingtalk.stream")

PLATFORM = "dingtalk"
ROBOT_TOPIC = ChatbotMessage.TOPIC
CARD_TOPIC = Card_Callback_Router_Topic
# A button is a dtmd:// link that makes the client send "<label> #<signed data>" as the
# person's own message; this finds the data (bot.signing's format) at the end of it.
BUTTON_DATA = re.compile(r"#([a-z]:\d{1,18}:[A-Za-z0-9_-]{16})\s*$")
# "绑定 <code>" (or "bind <code>"): an invite redeemed by a text, DingTalk having no deep links
BIND = re.compile(r"^\s*(?:绑定|bind|/start)\s+(\S{8,64})\s*$", re.IGNORECASE)
COMMAND = re.compile(r"^\s*/([a-z_]{2,20})(?:\s+(.*))?$", re.IGNORECASE | re.DOTALL)
MAX_TEXT = 4000  # characters of one inbound text handed on (DingTalk allows about 5,000)
RECONNECT_FIRST, RECONNECT_MAX = 1.0, 60.0


def inbound_of_message(data: dict[str, Any]) -> Inbound | None:
    """A robot message (``/v1.0/im/bot/messages/get``) as the conversation's event."""
    message = ChatbotMessage.from_dict(data)
    user = message.sender_staff_id
    if not user:  # a member of another organisation: no userid to answer or bind
        return None
    common: dict[str, Any] = {
        "platform": PLATFORM,
        "chat_id": str(user),
        "user_id": str(user),
        "private": message.conversation_type == "1",
        "message_ref": message.message_id,
    }
    text = _text_of(message, data)
    button = BUTTON_DATA.search(text or "")
    if button:  # a tap on one of our action card buttons
        return Inbound(**common, callback=button.group(1))
    bind = BIND.match(text or "")
    if bind:
        return Inbound(**common, text=text, command="start", args=bind.group(1))
    command = COMMAND.match(text or "")
    if command:
        args = (command.group(2) or "").strip()
        return Inbound(**common, text=args, command=command.group(1).lower(), args=args)
    return Inbound(**common, text=text, attachments=_attachments(message, data))


def inbound_of_card_callback(data: dict[str, Any]) -> Inbound | None:
    """A card button (``/v1.0/card/instances/callback``): the signed data is the button's
    ``action`` parameter in ``content.cardPrivateData.params``."""
    callback = dingtalk_stream.CardCallbackMessage.from_dict(data)
    user = callback.user_id
    params = (callback.content or {}).get("cardPrivateData", {}).get("params", {})
    action = params.get("action") if isinstance(params, dict) else None
    if not user or not isinstance(action, str):
        return None
    return Inbound(
        platform=PLATFORM,
        chat_id=str(user),
        user_id=str(user),
        callback=action,
        message_ref=callback.card_instance_id or None,
    )


def _text_of(message: ChatbotMessage, data: dict[str, Any]) -> str | None:
    texts = [t for t in (message.get_text_list() or []) if t]
    if message.message_type == "file":
        texts = []
    text = "\n".join(t.strip() for t in texts).strip()
    return text[:MAX_TEXT] or None


def _attachments(message: ChatbotMessage, data: dict[str, Any]) -> tuple[Attachment, ...]:
    """Pictures and files: their downloadCode is what the download API takes."""
    found: list[Attachment] = []
    if message.message_type in ("picture", "richText"):
        for code in message.get_image_list() or []:
            if code:
                found.append(Attachment("photo", code, None, "image/jpeg", None, None))
    if message.message_type == "file":
        content = data.get("content") or {}
        code = content.get("downloadCode")
        if code:
            name = content.get("fileName")
            found.append(Attachment("document", code, name, None, None, None))
    return tuple(found)


class _Handler(CallbackHandler):
    """Turns one topic's pushes into events for the frontend's queue; ACKs at once (the
    gateway redelivers a push that is not acknowledged in time)."""

    def __init__(self, parse: Callable[[dict[str, Any]], Inbound | None], queue: _Queue) -> None:
        super().__init__()
        self._parse, self._queue = parse, queue

    async def process(self, message: CallbackMessage) -> tuple[int, str]:
        try:
            event = self._parse(message.data)
        except Exception:  # a malformed push: say so to the gateway, keep the connection
            log.warning("malformed DingTalk push on %s", message.headers.topic)
            return AckMessage.STATUS_BAD_REQUEST, "malformed"
        if event is not None:
            self._queue.put_nowait(event)
        return AckMessage.STATUS_OK, "OK"


_Queue = asyncio.Queue[Inbound]


class StreamClient(dingtalk_stream.DingTalkStreamClient):
    """The SDK's client with a configurable gateway and a stoppable, non-blocking loop."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        gateway: str,
        http: httpx.AsyncClient,
        queue: _Queue,
    ) -> None:
        super().__init__(dingtalk_stream.Credential(client_id, client_secret), logger=log)
        self.gateway = gateway.rstrip("/") + "/v1.0/gateway/connections/open"
        self._http = http
        self.register_callback_handler(ROBOT_TOPIC, _Handler(inbound_of_message, queue))
        self.register_callback_handler(CARD_TOPIC, _Handler(inbound_of_card_callback, queue))
        self.connected = asyncio.Event()

    def open_connection(self) -> Any:  # the SDK's blocking version must never run here
        raise RuntimeError("use await open_connection_async()")

    async def open_connection_async(self) -> dict[str, Any] | None:
        """``POST …/v1.0/gateway/connections/open`` with the SDK's own body: the endpoint
        and one-time ticket of a websocket, or None (logged) when the gateway refuses."""
        topics = [{"type": "CALLBACK", "topic": topic} for topic in self.callback_handler_map]
        body = {
            "clientId": self.credential.client_id,
            "clientSecret": self.credential.client_secret,
            "subscriptions": topics,
            "ua": f"dingtalk-sdk-python/v{VERSION_STRING}-union dutybot",
            "localIp": _local_ip(),
        }
        headers = {
            "Accept": "application/json",
            "User-Agent": f"DingTalkStream/1.0 SDK/{VERSION_STRING} "
            f"Python/{platform.python_version()} dutybot",
        }
        try:
            response = await self._http.post(self.gateway, json=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("Stream gateway unreachable: %s", type(exc).__name__)
            return None
        if response.status_code != 200:
            log.warning("Stream gateway refused the connection: HTTP %d", response.status_code)
            return None
        data = response.json()
        if not isinstance(data, dict) or not data.get("endpoint") or not data.get("ticket"):
            log.warning("Stream gateway answered without endpoint and ticket")
            return None
        return data

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, read pushes until ``stop``; reconnect with growing pauses when dropped."""
        self.pre_start()
        delay = RECONNECT_FIRST
        while not stop.is_set():
            connection = await self.open_connection_async()
            if connection is not None:
                uri = f"{connection['endpoint']}?ticket={quote_plus(connection['ticket'])}"
                try:
                    await self._read(uri, stop)
                    delay = RECONNECT_FIRST
                except (OSError, websockets.exceptions.WebSocketException) as exc:
                    log.warning("Stream connection dropped: %s", type(exc).__name__)
                finally:
                    self.connected.clear()
                    self.websocket = None
            if stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(delay * 2, RECONNECT_MAX)

    async def _read(self, uri: str, stop: asyncio.Event) -> None:
        async with websockets.connect(uri, open_timeout=10, ping_interval=60) as websocket:
            self.websocket = websocket
            self.connected.set()
            log.info("Stream connected")
            stopping = asyncio.create_task(stop.wait())
            try:
                while True:
                    receiving = asyncio.create_task(websocket.recv())
                    done, _ = await asyncio.wait(
                        {receiving, stopping}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if stopping in done:
                        receiving.cancel()
                        return
                    raw = receiving.result()
                    try:
                        frame = json.loads(raw)
                    except ValueError:
                        log.warning("Stream frame that is not JSON ignored")
                        continue
                    # one frame at a time: handlers only enqueue, so this is quick
                    if await self.route_message(frame) == self.TAG_DISCONNECT:
                        return  # the gateway asked us to reconnect (a new ticket)
            finally:
                stopping.cancel()


def _local_ip() -> str:
    """The address the gateway records for this client (informational); no network traffic."""
    with contextlib.suppress(OSError):
        return socket.gethostbyname(socket.gethostname())
    return ""
