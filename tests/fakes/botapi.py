"""A fake Telegram Bot API server: real HTTP on 127.0.0.1, scripted failures, every call recorded.

python-telegram-bot talks to it exactly as it talks to api.telegram.org (point ``base_url`` at
:attr:`FakeBotApi.base_url`), so tests exercise PTB's own request, parsing and error mapping
instead of a mock of it -- the idea of PTB's ``tests/auxil/networking.py``, one layer further out.

Usage::

    with FakeBotApi() as api:
        bot = telegram.Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url)
        api.inject("sendMessage", Fault.retry_after(5), chat_id="42")  # next send to 42: 429
        api.push_message(42, "/start")                                  # next getUpdates sees it
        ...
        assert api.calls_to("sendMessage")[0].params["parse_mode"] == "HTML"

Recorded params are normalised the same way whatever the encoding (JSON, form, multipart):
``chat_id`` is a ``str``, integer fields are ``int``, boolean fields are ``bool``, structured
fields (``reply_markup``, ``link_preview_options``...) are decoded JSON, everything else is
the string sent. Returned messages carry the text as Telegram would: markup parsed away.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from html.parser import HTMLParser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

TOKEN = "123456789:TEST-fake-bot-api-token"
BOT_ID = 123456789
TEXT_LIMIT = 4096  # characters after entity parsing, counted in UTF-16 code units
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64  # bytes

# How form/multipart string values are coerced, so recorded params look alike for every encoding.
_INT_FIELDS = frozenset(
    ["message_id", "offset", "limit", "timeout", "cache_time", "message_thread_id", "user_id"]
)
_BOOL_FIELDS = frozenset(
    [
        "disable_notification",
        "protect_content",
        "show_alert",
        "drop_pending_updates",
        "disable_web_page_preview",
        "allow_sending_without_reply",
        "has_spoiler",
        "disable_content_type_detection",
    ]
)
_JSON_FIELDS = frozenset(
    [
        "reply_markup",
        "link_preview_options",
        "entities",
        "caption_entities",
        "allowed_updates",
        "commands",
        "scope",
        "reply_parameters",
        "media",
    ]
)
_HTML_TAGS = frozenset(
    [
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "tg-emoji",
        "code",
        "pre",
        "blockquote",
    ]
)
_NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


def utf16_len(text: str) -> int:
    """Telegram counts text length in UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class UploadedFile:
    """One multipart file part of a request."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Call:
    """One request the server received; ``status`` is filled in once it has been answered."""

    method: str  # as written in the URL, e.g. "sendMessage"
    params: dict[str, Any]
    files: dict[str, UploadedFile]
    encoding: str  # "json" | "form" | "multipart" | "none"
    at: float  # time.monotonic() on arrival: measure pacing with differences
    status: int | None = None
    fault: Fault | None = None  # the injected fault that answered it, if any
    answered: float | None = None  # time.monotonic() once the answer was written to the socket

    @property
    def chat_id(self) -> str | None:
        value = self.params.get("chat_id")
        return None if value is None else str(value)


@dataclass(frozen=True)
class Fault:
    """A scripted answer: an error status and body, and/or a delay before answering.

    With ``status=None`` the request is served normally after ``delay`` -- the message is
    "sent" even though a client with a shorter read timeout has given up, as on the real API.
    """

    status: int | None = None
    description: str = ""
    parameters: dict[str, Any] | None = None
    delay: float = 0.0
    body: bytes | None = None  # a raw, non-JSON body (e.g. an nginx error page)
    reset: bool = False  # drop the connection without an answer (nothing is sent)

    @classmethod
    def error(
        cls, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> Fault:
        return cls(status=status, description=description, parameters=parameters)

    @classmethod
    def retry_after(cls, seconds: int) -> Fault:
        return cls.error(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds})

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        phrases = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
        return cls.error(status, phrases.get(status, "Server Error"))

    @classmethod
    def bad_gateway_html(cls) -> Fault:
        """What a real 502 from Telegram's front end looks like: HTML, not JSON."""
        return cls(status=502, body=_NGINX_502)

    @classmethod
    def connection_reset(cls) -> Fault:
        """The connection dies before an answer; the message is not sent."""
        return cls(reset=True)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        return cls(delay=seconds)

    @classmethod
    def blocked(cls) -> Fault:
        return cls.error(403, "Forbidden: bot was blocked by the user")

    @classmethod
    def user_deactivated(cls) -> Fault:
        return cls.error(403, "Forbidden: user is deactivated")

    @classmethod
    def kicked(cls) -> Fault:
        return cls.error(403, "Forbidden: bot was kicked from the group chat")

    @classmethod
    def chat_not_found(cls) -> Fault:
        return cls.error(400, "Bad Request: chat not found")

    @classmethod
    def migrated(cls, new_chat_id: int) -> Fault:
        return cls.error(
            400,
            "Bad Request: group chat was upgraded to a supergroup chat",
            {"migrate_to_chat_id": new_chat_id},
        )

    @classmethod
    def bad_request(cls, description: str) -> Fault:
        return cls.error(400, f"Bad Request: {description}")

    def payload(self) -> bytes:
        if self.body is not None:
            return self.body
        error: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            error["parameters"] = self.parameters
        return json.dumps(error).encode()


class ApiError(Exception):
    """An error answer from a method handler (the same shape Telegram uses)."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description

    def payload(self) -> bytes:
        return json.dumps(
            {"ok": False, "error_code": self.status, "description": self.description}
        ).encode()


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes


@dataclass
class _State:
    """Everything mutable; guarded by FakeBotApi._cond."""

    calls: list[Call] = field(default_factory=list)
    faults: dict[tuple[str, str | None], deque[Fault]] = field(default_factory=dict)
    updates: deque[dict[str, Any]] = field(default_factory=deque)
    messages: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    files: dict[str, _StoredFile] = field(default_factory=dict)
    next_message_id: dict[str, int] = field(default_factory=dict)


class _TelegramHtml(HTMLParser):
    """Checks Telegram's HTML subset and keeps the visible text, as the API does on send."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.stack: list[str] = []
        self.error: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HTML_TAGS:
            self.error = self.error or f'unsupported start tag "{tag}"'
        self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.error = self.error or f'unsupported start tag "{tag}"'

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.error = self.error or f'unexpected end tag "{tag}"'
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(text: str) -> str:
    """The visible text of Telegram HTML, or ApiError(400) as Telegram would answer."""
    parser = _TelegramHtml()
    parser.feed(text)
    parser.close()
    if parser.error is None and parser.stack:
        parser.error = f'can\'t find end tag corresponding to start tag "{parser.stack[-1]}"'
    if parser.error:
        raise ApiError(400, f"Bad Request: can't parse entities: {parser.error}")
    return "".join(parser.text)


def _coerce(params: dict[str, Any]) -> dict[str, Any]:
    """One shape for recorded params, whatever the body encoding."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name in ("chat_id", "from_chat_id") and value is not None:
            value = str(value)
        elif name in _INT_FIELDS and isinstance(value, str):
            with contextlib.suppress(ValueError):  # else left as sent
                value = int(float(value))
        elif name in _BOOL_FIELDS and isinstance(value, str):
            value = value.lower() in ("true", "1")
        elif name in _JSON_FIELDS and isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        out[name] = value
    return out


def _decode_body(
    content_type: str, body: bytes, query: str
) -> tuple[dict[str, Any], dict[str, UploadedFile], str]:
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    files: dict[str, UploadedFile] = {}
    kind = content_type.split(";")[0].strip().lower()
    if not body:
        encoding = "none"
    elif kind == "application/json":
        encoding = "json"
        decoded = json.loads(body)
        if not isinstance(decoded, dict):
            raise ApiError(400, "Bad Request: request body must be a JSON object")
        params.update(decoded)
    elif kind == "multipart/form-data":
        encoding = "multipart"
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str):
                continue
            data = part.get_payload(decode=True)
            data = data if isinstance(data, bytes) else b""
            filename = part.get_filename()
            if filename is None:
                params[name] = data.decode("utf-8")
            else:
                files[name] = UploadedFile(name, filename, part.get_content_type(), data)
    else:  # application/x-www-form-urlencoded, or anything else form-like
        encoding = "form"
        params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    return _coerce(params), files, encoding


@dataclass(frozen=True)
class _Reply:
    """What a front end writes back: a status and body, or a dropped connection."""

    status: int
    payload: bytes
    content_type: str = "application/json"
    reset: bool = False
    call: Call | None = None  # the recorded request it answers (stamped once written)

    def written(self) -> None:
        if self.call is not None:
            self.call.answered = time.monotonic()


@dataclass(frozen=True)
class _Pending:
    """A recorded request waiting for its answer (after its fault's delay, if any)."""

    call: Call
    fault: Fault | None
    token_ok: bool


def _phrase(status: int) -> str:
    """The reason phrase of a status line (0 and other odd codes included)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class _LoopConnection(asyncio.Protocol):
    """HTTP/1.1 keep-alive on one connection, for the asyncio front end: requests with a
    Content-Length body (what httpx and aiohttp send), answered one at a time in order."""

    def __init__(self, fake: FakeBotApi) -> None:
        self.fake = fake
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a delayed answer is pending: later requests wait in the buffer
        self.later: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._next()

    def _next(self) -> None:
        """Serve every complete request in the buffer (a delayed one resumes this later)."""
        while self.transport is not None and not self.transport.is_closing():
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            lines = self.buffer[:head_end].decode("latin-1").split("\r\n")
            command, target, _ = [*lines[0].split(" ", 2), "", ""][:3]
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if headers.get("transfer-encoding", "").lower() == "chunked":
                self._write(_Reply(411, ApiError(411, "Length Required").payload()), close=True)
                return
            length = int(headers.get("content-length") or 0)
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            body, self.buffer = self.buffer[head_end + 4 : end], self.buffer[end:]
            close = headers.get("connection", "").lower() == "close"
            accepted = self.fake._accept(command, target, headers.get("content-type", ""), body)
            if isinstance(accepted, _Pending) and (
                (accepted.fault is not None and accepted.fault.delay)
                or accepted.call.method.lower() == "getupdates"  # a long poll: off the loop
            ):
                self.busy = True
                self.later = asyncio.ensure_future(self._later(accepted, close))
                return
            reply = self.fake._complete(accepted) if isinstance(accepted, _Pending) else accepted
            self._write(reply, close)

    async def _later(self, pending: _Pending, close: bool) -> None:
        delay = pending.fault.delay if pending.fault is not None else 0.0
        if delay:
            await asyncio.sleep(delay)
        loop = asyncio.get_running_loop()
        reply = await loop.run_in_executor(None, self.fake._complete, pending)
        self.busy = False
        self._write(reply, close)
        self._next()

    def _write(self, reply: _Reply, close: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if reply.reset:
            sock = transport.get_extra_info("socket")
            with contextlib.suppress(OSError):
                sock.shutdown(2)
            transport.abort()
            return
        head = (
            f"HTTP/1.1 {reply.status} {_phrase(reply.status)}\r\n"
            f"Content-Type: {reply.content_type}\r\nContent-Length: {len(reply.payload)}\r\n"
            + ("Connection: close\r\n" if close else "")
            + "\r\n"
        )
        transport.write(head.encode("latin-1") + reply.payload)
        reply.written()
        if close:
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 resets connections when a sender opens its pool
    # (40+ at once): the real API does not, and the resets read as an outage to the sender
    request_queue_size = 256
    fake: FakeBotApi

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (killed, or gave up) is the real API's everyday case: no
        traceback for it; anything else is printed as socketserver does."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # idle keep-alive connections end on their own
    disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms stalls
    server: _Server

    def do_POST(self) -> None:
        self.server.fake._serve(self)

    def do_GET(self) -> None:
        self.server.fake._serve(self)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: every call is recorded, and an access log would print the token."""


class FakeBotApi:
    """The fake server. Thread-safe: tests, PTB's client and handler threads share it."""

    def __init__(
        self,
        *,
        token: str = TOKEN,
        poll_cap: float = 0.2,
        bot_username: str = "dutybot_test_bot",
        front: str = "threads",
    ) -> None:
        if front not in ("threads", "asyncio"):
            raise ValueError("front: 'threads' or 'asyncio'")
        self.front = front  # asyncio: one event loop thread, for benchmarks at scale
        self.token = token
        self.poll_cap = poll_cap  # getUpdates never holds a request open longer than this
        self.bot_user: dict[str, Any] = {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "dutybot",
            "username": bot_username,
        }
        self._cond = threading.Condition(threading.RLock())
        self._state = _State()
        self._stopping = threading.Event()
        self._update_ids = itertools.count(1)
        self._ids = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_server: asyncio.Server | None = None
        self._port: int | None = None

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeBotApi:
        if self.front == "asyncio":
            return self._start_loop()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def _start_loop(self) -> FakeBotApi:
        """The asyncio front end: one event loop in a thread of its own, no thread per
        connection (a thread-per-connection server on 2 cores spends its time on the GIL)."""
        loop = asyncio.new_event_loop()
        started = threading.Event()

        async def listen() -> None:
            self._loop_server = await loop.create_server(
                lambda: _LoopConnection(self), "127.0.0.1", 0, backlog=1024
            )
            self._port = int(self._loop_server.sockets[0].getsockname()[1])
            started.set()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(listen())
            loop.run_forever()
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        started.wait(5)
        return self

    def stop(self) -> None:
        """Wake long polls and delayed answers, then close the socket."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._loop is not None and self._loop_server is not None:
            self._loop.call_soon_threadsafe(self._loop_server.close)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeBotApi:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeBotApi is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """For ``telegram.Bot(base_url=...)``: the token is appended by PTB."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    # ---- failure injection ----------------------------------------------------------------

    def inject(self, method: str, *faults: Fault, chat_id: str | int | None = None) -> None:
        """Queue answers for the next calls of ``method`` (to ``chat_id`` only, if given).

        Each fault answers one call, in order; then the method behaves normally again.
        A chat-specific queue is used before the method-wide one.
        """
        key = (method.lower(), None if chat_id is None else str(chat_id))
        with self._cond:
            self._state.faults.setdefault(key, deque()).extend(faults)

    def pending_faults(self, method: str, chat_id: str | int | None = None) -> int:
        key = (method.lower(), None if chat_id is None else str(chat_id))
        with self._cond:
            return len(self._state.faults.get(key, ()))

    def _take_fault(self, method: str, chat_id: str | None) -> Fault | None:
        with self._cond:
            for key in ((method.lower(), chat_id), (method.lower(), None)):
                queue = self._state.faults.get(key)
                if queue:
                    return queue.popleft()
        return None

    # ---- recorded calls -------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._cond:
            return list(self._state.calls)

    def calls_to(self, method: str, *, chat_id: str | int | None = None) -> list[Call]:
        """Calls of one method (case-insensitive, as the API), optionally to one chat."""
        with self._cond:
            return [
                call
                for call in self._state.calls
                if call.method.lower() == method.lower()
                and (chat_id is None or call.chat_id == str(chat_id))
            ]

    def clear_calls(self) -> None:
        with self._cond:
            self._state.calls.clear()

    def wait_for_calls(
        self, method: str, *, count: int = 1, chat_id: str | int | None = None, timeout: float = 5
    ) -> list[Call]:
        """Block until ``count`` answered calls exist; for tests whose client runs elsewhere."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [c for c in self.calls_to(method, chat_id=chat_id) if c.status is not None]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(found)} of {count} {method} calls after {timeout}s")
                self._cond.wait(remaining)

    async def until_calls(
        self, method: str, *, count: int = 1, chat_id: str | int | None = None, timeout: float = 5
    ) -> list[Call]:
        """Like wait_for_calls, without blocking the event loop the client runs on."""
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.calls_to(method, chat_id=chat_id) if c.status is not None]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(found)} of {count} {method} calls after {timeout}s")
            await asyncio.sleep(0.01)

    def sent_messages(self, chat_id: str | int | None = None) -> list[dict[str, Any]]:
        """Messages the bot sent (as last edited), oldest first."""
        with self._cond:
            return [
                message
                for (chat, _), message in self._state.messages.items()
                if message["from"]["id"] == BOT_ID and (chat_id is None or chat == str(chat_id))
            ]

    # ---- updates the test pushes ----------------------------------------------------------

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue a raw update for getUpdates; ``update_id`` is assigned if missing."""
        with self._cond:
            update.setdefault("update_id", next(self._update_ids))
            self._state.updates.append(update)
            self._cond.notify_all()
        return update

    def pending_updates(self) -> list[dict[str, Any]]:
        with self._cond:
            return list(self._state.updates)

    def push_message(
        self,
        chat_id: str | int,
        text: str,
        *,
        from_id: int | None = None,
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        """A text message from a user; a leading /command gets its bot_command entity."""
        extra: dict[str, Any] = {"text": text}
        command = re.match(r"/[A-Za-z0-9_]+(@\w+)?", text)
        if command:
            extra["entities"] = [
                {"type": "bot_command", "offset": 0, "length": utf16_len(command.group())}
            ]
        if reply_to_message_id is not None:
            with self._cond:
                replied = self._state.messages.get((str(chat_id), reply_to_message_id))
            extra["reply_to_message"] = replied or self._bare_message(
                str(chat_id), reply_to_message_id
            )
        return self._push_user_message(chat_id, from_id, extra)

    def push_callback(
        self,
        chat_id: str | int,
        data: str,
        *,
        message_id: int | None = None,
        from_id: int | None = None,
    ) -> dict[str, Any]:
        """A button press on ``message_id`` (default: the bot's latest message in the chat)."""
        key = str(chat_id)
        with self._cond:
            if message_id is None:
                own = self.sent_messages(key)
                message_id = own[-1]["message_id"] if own else 1
            message = self._state.messages.get((key, message_id)) or self._bare_message(
                key, message_id
            )
            query = {
                "id": str(next(self._ids)),
                "from": self._user(key, from_id),
                "chat_instance": str(zlib.crc32(key.encode())),
                "data": data,
                "message": message,
            }
        return self.push_update({"callback_query": query})

    def push_photo(
        self,
        chat_id: str | int,
        content: bytes = b"\xff\xd8\xff\xe0fake-jpeg",
        *,
        caption: str | None = None,
        from_id: int | None = None,
        width: int = 1280,
        height: int = 960,
    ) -> dict[str, Any]:
        """A photo from a user; its largest size can be fetched with getFile and downloaded."""
        stored = self.add_file(content, folder="photos", suffix=".jpg")
        thumb = self.add_file(content[:64], folder="photos", suffix=".jpg")
        extra: dict[str, Any] = {
            "photo": [
                self._photo_size(thumb, width // 10, height // 10),
                self._photo_size(stored, width, height),
            ]
        }
        if caption is not None:
            extra["caption"] = caption
        return self._push_user_message(chat_id, from_id, extra)

    def push_document(
        self,
        chat_id: str | int,
        content: bytes = b"%PDF-1.4 fake",
        *,
        file_name: str = "evidence.pdf",
        mime_type: str = "application/pdf",
        caption: str | None = None,
        from_id: int | None = None,
    ) -> dict[str, Any]:
        """A document from a user; fetch it with getFile and download it from base_file_url."""
        stored = self.add_file(content, folder="documents", suffix="_" + file_name)
        extra: dict[str, Any] = {
            "document": {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_name": file_name,
                "mime_type": mime_type,
                "file_size": len(content),
            }
        }
        if caption is not None:
            extra["caption"] = caption
        return self._push_user_message(chat_id, from_id, extra)

    def add_file(
        self, content: bytes, *, folder: str = "documents", suffix: str = ""
    ) -> _StoredFile:
        """Store bytes as a Telegram file (what getFile and the file URL serve)."""
        n = next(self._ids)
        stored = _StoredFile(
            file_id=f"FILE-{n}-{zlib.crc32(content):08x}",
            file_unique_id=f"U{n}",
            file_path=f"{folder}/file_{n}{suffix}",
            data=content,
        )
        with self._cond:
            self._state.files[stored.file_id] = stored
        return stored

    def file_content(self, file_id: str) -> bytes:
        with self._cond:
            return self._state.files[file_id].data

    # ---- shapes ---------------------------------------------------------------------------

    @staticmethod
    def _chat(chat_key: str) -> dict[str, Any]:
        try:
            chat_id = int(chat_key)
        except ValueError:  # "@channelusername"
            number = -1_000_000_000_000 - zlib.crc32(chat_key.encode())
            return {"id": number, "type": "channel", "title": chat_key, "username": chat_key[1:]}
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": f"user{chat_id}"}
        if chat_key.startswith("-100"):
            return {"id": chat_id, "type": "supergroup", "title": f"group{chat_id}"}
        return {"id": chat_id, "type": "group", "title": f"group{chat_id}"}

    @staticmethod
    def _user(chat_key: str, from_id: int | None) -> dict[str, Any]:
        if from_id is None:
            from_id = int(chat_key) if chat_key.lstrip("-").isdigit() and int(chat_key) > 0 else 1
        return {
            "id": from_id,
            "is_bot": False,
            "first_name": f"user{from_id}",
            "language_code": "zh-hans",
        }

    @staticmethod
    def _photo_size(stored: _StoredFile, width: int, height: int) -> dict[str, Any]:
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "width": width,
            "height": height,
            "file_size": len(stored.data),
        }

    def _bare_message(self, chat_key: str, message_id: int) -> dict[str, Any]:
        return {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": self._chat(chat_key),
            "from": self.bot_user,
            "text": "",
        }

    def _new_message(self, chat_key: str, sender: dict[str, Any], **content: Any) -> dict[str, Any]:
        with self._cond:
            message_id = self._state.next_message_id.get(chat_key, 1)
            self._state.next_message_id[chat_key] = message_id + 1
            message = {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": self._chat(chat_key),
                "from": sender,
                **{k: v for k, v in content.items() if v is not None},
            }
            self._state.messages[(chat_key, message_id)] = message
        return message

    def _push_user_message(
        self, chat_id: str | int, from_id: int | None, extra: dict[str, Any]
    ) -> dict[str, Any]:
        key = str(chat_id)
        message = self._new_message(key, self._user(key, from_id), **extra)
        return self.push_update({"message": message})

    # ---- HTTP -----------------------------------------------------------------------------
    # One request path for both front ends: _accept records the call and picks its fault, the
    # front end waits out a fault's delay its own way (a thread sleeps, the loop awaits), then
    # _complete answers.  What is recorded is the same whichever front end served it.

    def _serve(self, handler: _Handler) -> None:
        try:
            self._serve_one(handler)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client gave up (e.g. its read timeout)

    def _serve_one(self, handler: _Handler) -> None:
        body = self._read_body(handler)
        accepted = self._accept(
            handler.command, handler.path, handler.headers.get("Content-Type", ""), body
        )
        if isinstance(accepted, _Pending):
            fault = accepted.fault
            if fault is not None and fault.delay and self._stopping.wait(fault.delay):
                handler.close_connection = True
                return
            accepted = self._complete(accepted)
        if accepted.reset:
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(2)  # SHUT_RDWR: the client sees the connection die
            return
        self._answer(handler, accepted.status, accepted.payload, accepted.content_type)
        accepted.written()

    def _accept(
        self, command: str, raw_path: str, content_type: str, body: bytes
    ) -> _Pending | _Reply:
        """Record one request; an answer at once (a file, a 404, a bad body) or what is pending."""
        url = urlsplit(raw_path)
        path = unquote(url.path)  # PTB quotes file URLs whole, ":" of the token included
        file_match = re.fullmatch(r"/file/bot([^/]+)/(.+)", path)
        if file_match and command == "GET":
            return self._file_reply(file_match.group(1), file_match.group(2))
        match = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)", path)
        if match is None:
            return _Reply(404, ApiError(404, "Not Found").payload())
        token, method = match.groups()
        try:
            params, files, encoding = _decode_body(content_type, body, url.query)
        except (ValueError, ApiError) as exc:
            error = exc if isinstance(exc, ApiError) else ApiError(400, f"Bad Request: {exc}")
            return _Reply(error.status, error.payload())
        call = Call(method, params, files, encoding, at=time.monotonic())
        with self._cond:
            self._state.calls.append(call)
        fault = self._take_fault(method, call.chat_id) if token == self.token else None
        return _Pending(call, fault, token == self.token)

    def _complete(self, pending: _Pending) -> _Reply:
        """Answer a recorded request (after its fault's delay, if any)."""
        call, fault = pending.call, pending.fault
        if fault is not None and fault.reset:
            with self._cond:
                call.status, call.fault = 0, fault
                self._cond.notify_all()
            return _Reply(0, b"", reset=True)
        if not pending.token_ok:
            status, payload = 401, ApiError(401, "Unauthorized").payload()
        elif fault is not None and fault.status is not None:
            status, payload = fault.status, fault.payload()
        else:
            try:
                result = self._dispatch(call.method, call.params, call.files)
            except ApiError as exc:
                status, payload = exc.status, exc.payload()
            else:
                status, payload = 200, json.dumps({"ok": True, "result": result}).encode()
        with self._cond:
            call.status = status
            call.fault = fault
            self._cond.notify_all()
        content_type = "text/html" if fault is not None and fault.body else "application/json"
        return _Reply(status, payload, content_type, call=call)

    @staticmethod
    def _read_body(handler: _Handler) -> bytes:
        if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    handler.rfile.readline()
                    return b"".join(chunks)
                chunks.append(handler.rfile.read(size))
                handler.rfile.readline()
        length = int(handler.headers.get("Content-Length") or 0)
        return handler.rfile.read(length) if length else b""

    @staticmethod
    def _answer(
        handler: _Handler, status: int, payload: bytes, content_type: str = "application/json"
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _file_reply(self, token: str, path: str) -> _Reply:
        with self._cond:
            stored = next((f for f in self._state.files.values() if f.file_path == path), None)
        if token != self.token or stored is None:
            return _Reply(404, ApiError(404, "Not Found").payload())
        return _Reply(200, stored.data, "application/octet-stream")

    # ---- methods --------------------------------------------------------------------------

    def _dispatch(self, method: str, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        handlers: dict[str, Callable[[dict[str, Any], dict[str, UploadedFile]], Any]] = {
            "getme": lambda p, f: {
                **self.bot_user,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            },
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_reply_markup,
            "getupdates": self._get_updates,
            "getfile": self._get_file,
            "senddocument": lambda p, f: self._send_media("document", p, f),
            "sendphoto": lambda p, f: self._send_media("photo", p, f),
        }
        for trivial in (
            "answercallbackquery",
            "setmycommands",
            "deletemycommands",
            "deletewebhook",
            "setwebhook",
            "sendchataction",
            "deletemessage",
        ):
            handlers[trivial] = lambda p, f: True
        handler = handlers.get(method.lower())
        if handler is None:
            raise ApiError(404, "Not Found")
        return handler(params, files)

    @staticmethod
    def _chat_key(params: dict[str, Any]) -> str:
        chat_id = params.get("chat_id")
        if not chat_id:
            raise ApiError(400, "Bad Request: chat_id is empty")
        return str(chat_id)

    @staticmethod
    def _visible(text: str, parse_mode: Any) -> str:
        return parse_html(text) if str(parse_mode or "").upper() == "HTML" else text

    @staticmethod
    def _check_markup(markup: Any) -> dict[str, Any] | None:
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and len(str(data).encode()) > CALLBACK_DATA_LIMIT:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                if not button.get("text"):
                    raise ApiError(
                        400, "Bad Request: text buttons are unallowed in the inline keyboard"
                    )
        return markup

    def _checked_text(self, params: dict[str, Any]) -> str:
        text = str(params.get("text") or "")
        visible = self._visible(text, params.get("parse_mode")).strip()
        if not visible:
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(visible) > TEXT_LIMIT:
            raise ApiError(400, "Bad Request: message is too long")
        return visible

    def _send_message(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat_key = self._chat_key(params)
        text = self._checked_text(params)
        markup = self._check_markup(params.get("reply_markup"))
        return self._new_message(chat_key, self.bot_user, text=text, reply_markup=markup)

    def _stored(self, params: dict[str, Any]) -> tuple[str, int, dict[str, Any]]:
        chat_key = self._chat_key(params)
        message_id = params.get("message_id")
        with self._cond:
            message = self._state.messages.get((chat_key, message_id))  # type: ignore[arg-type]
        if not isinstance(message_id, int) or message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        return chat_key, message_id, message

    def _edit_message_text(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        if params.get("inline_message_id"):
            return True
        chat_key, message_id, message = self._stored(params)
        text = self._checked_text(params)
        markup = self._check_markup(params.get("reply_markup"))
        if text == message.get("text") and markup == message.get("reply_markup"):
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        return self._replace(chat_key, message_id, message, text=text, reply_markup=markup)

    def _edit_reply_markup(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        if params.get("inline_message_id"):
            return True
        chat_key, message_id, message = self._stored(params)
        markup = self._check_markup(params.get("reply_markup"))
        if markup == message.get("reply_markup") or (
            markup == {"inline_keyboard": []} and "reply_markup" not in message
        ):
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        return self._replace(chat_key, message_id, message, reply_markup=markup)

    def _replace(
        self, chat_key: str, message_id: int, message: dict[str, Any], **changes: Any
    ) -> dict[str, Any]:
        edited = {**message, **changes, "edit_date": int(time.time())}
        if not edited.get("reply_markup"):
            edited.pop("reply_markup", None)
        with self._cond:
            self._state.messages[(chat_key, message_id)] = edited
        return edited

    def _get_updates(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        offset = params.get("offset")
        limit = params.get("limit") or 100
        timeout = params.get("timeout") or 0
        if not isinstance(offset, int | None) or not isinstance(limit, int):
            raise ApiError(400, "Bad Request: wrong parameter")
        deadline = time.monotonic() + min(float(timeout), self.poll_cap)
        with self._cond:
            updates = self._state.updates
            if offset is not None:
                while updates and updates[0]["update_id"] < offset:
                    updates.popleft()  # confirmed, as on the real API
            while not updates and not self._stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return list(itertools.islice(updates, limit))

    def _get_file(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        with self._cond:
            stored = self._state.files.get(str(params.get("file_id")))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    def _send_media(
        self, kind: str, params: dict[str, Any], files: dict[str, UploadedFile]
    ) -> dict[str, Any]:
        chat_key = self._chat_key(params)
        value = params.get(kind)
        upload = files.get(kind)
        if isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value.removeprefix("attach://"))
        if not value and upload is None:
            raise ApiError(400, f"Bad Request: there is no {kind} in the request")
        if upload is not None:
            stored = self.add_file(
                upload.data, folder=f"{kind}s", suffix="_" + (upload.filename or "")
            )
            filename, mime = upload.filename, upload.content_type
        else:
            with self._cond:
                known = self._state.files.get(str(value))
            stored = known or self.add_file(b"", folder=f"{kind}s")  # a URL: not fetched
            filename, mime = None, None
        caption = params.get("caption")
        if caption is not None:
            caption = self._visible(str(caption), params.get("parse_mode"))
            if utf16_len(caption) > CAPTION_LIMIT:
                raise ApiError(400, "Bad Request: message caption is too long")
        markup = self._check_markup(params.get("reply_markup"))
        media: Any
        if kind == "photo":
            media = [self._photo_size(stored, 1280, 960)]
        else:
            media = {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_name": filename,
                "mime_type": mime,
                "file_size": len(stored.data),
            }
            media = {k: v for k, v in media.items() if v is not None}
        return self._new_message(
            chat_key, self.bot_user, caption=caption or None, reply_markup=markup, **{kind: media}
        )


@pytest.fixture
def fake_botapi() -> Iterator[FakeBotApi]:
    """A started fake server per test (import this fixture into a test module or conftest)."""
    with FakeBotApi() as api:
        yield api
