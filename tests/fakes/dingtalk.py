"""A fake DingTalk: the OpenAPI over real HTTP and the Stream gateway over a real websocket,
both on 127.0.0.1, speaking the documented wire formats (see bot/adapters/dingtalk/openapi.py
and stream.py for the pages), with scripted failures and every request recorded.

The real adapter (httpx) and the real ``dingtalk-stream`` SDK talk to it as to
api.dingtalk.com: point ``DUTYBOT_DINGTALK_API_BASE`` / ``…_OAPI_BASE`` / ``…_STREAM_BASE`` at
:attr:`FakeDingTalk.url`.

- ``POST /v1.0/oauth2/accessToken`` issues tokens (``expireIn`` 7,200 s); :meth:`revoke_tokens`
  makes every issued token invalid (401 ``InvalidAuthentication``), as an expiry would.
- ``POST /v1.0/robot/oToMessages/batchSend`` checks the token, the robot code, ≤ 20 userIds
  and each msgKey's parameters, and records the message; :meth:`fail` scripts the next answers
  for one user (429 throttling, 500, a slow answer, ``invalidStaffIdList``, 400,
  ``flowControlledStaffIdList``).
- ``POST /v1.0/robot/messageFiles/download`` → ``downloadUrl`` on this server, ``GET`` serves it.
- ``POST /topapi/v2/user/getbymobile`` resolves mobiles registered with :meth:`add_user`.
- ``POST /v1.0/gateway/connections/open`` checks the credentials and hands out a one-time
  ticket; the websocket then receives pushes (:meth:`push_text`, :meth:`push_picture`,
  :meth:`tap`, :meth:`push_card_callback`) as ``CALLBACK`` frames and records each ACK.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import ServerConnection, serve

CLIENT_ID = "dingfaketestclientid"
CLIENT_SECRET = "fake-client-secret-not-a-real-one"
ROBOT_CODE = "dingfakerobot"
ROBOT_TOPIC = "/v1.0/im/bot/messages/get"
CARD_TOPIC = "/v1.0/card/instances/callback"
MAX_MSG_PARAM = 15_000  # bytes; the documented limit of robot msgParam
# msgKey → the msgParam fields it needs (企业机器人发送消息的消息类型)
MSG_KEYS: dict[str, tuple[str, ...]] = {
    "sampleText": ("content",),
    "sampleMarkdown": ("title", "text"),
    "sampleActionCard": ("title", "text", "singleTitle", "singleURL"),
    **{
        f"sampleActionCard{n}": (
            "title",
            "text",
            *(f"{k}{i}" for i in range(1, n + 1) for k in ("actionTitle", "actionURL")),
        )
        for n in range(2, 6)
    },
}
DTMD = "dtmd://dingtalkclient/sendMessage?content="

# failure kinds of :meth:`FakeDingTalk.fail`
THROTTLED, IP_BANNED, SERVER_ERROR, SLOW, GONE, BAD_REQUEST, FLOW_CONTROLLED, QUOTA = (
    "throttled",
    "ip_banned",
    "server_error",
    "slow",
    "gone",
    "bad_request",
    "flow_controlled",
    "quota",
)


@dataclass
class Sent:
    """One robot message as DingTalk accepted it."""

    user: str
    msg_key: str
    param: dict[str, Any]
    query_key: str

    @property
    def text(self) -> str:
        return str(self.param.get("text") or self.param.get("content") or "")

    @property
    def buttons(self) -> dict[str, str]:
        """Label → the text a tap sends (the dtmd link's content)."""
        found: dict[str, str] = {}
        single = self.param.get("singleURL")
        if isinstance(single, str) and single.startswith(DTMD):
            found[str(self.param.get("singleTitle"))] = unquote(single[len(DTMD) :])
        for i in range(1, 6):
            label, url = self.param.get(f"actionTitle{i}"), self.param.get(f"actionURL{i}")
            if label and isinstance(url, str) and url.startswith(DTMD):
                found[str(label)] = unquote(url[len(DTMD) :])
        return found


@dataclass
class Request:
    method: str
    path: str
    body: Any
    token: str | None
    status: int = 0
    user: str | None = None


@dataclass
class _State:
    tokens: set[str] = field(default_factory=set)
    issued: int = 0
    requests: list[Request] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    faults: dict[str | None, deque[tuple[str, float]]] = field(default_factory=dict)
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # code → content, name
    mobiles: dict[str, str] = field(default_factory=dict)
    tickets: set[str] = field(default_factory=set)
    subscriptions: list[Any] = field(default_factory=list)
    acks: dict[str, dict[str, Any]] = field(default_factory=dict)
    connections: int = 0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeDingTalk


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    disable_nagle_algorithm = True
    server: _Server

    def do_POST(self) -> None:
        self.server.fake._serve(self)

    def do_GET(self) -> None:
        self.server.fake._serve(self)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: requests are recorded, and an access log would print tokens."""


class FakeDingTalk:
    """Thread-safe: the test, the adapter's HTTP client and the websocket share it."""

    def __init__(self, *, users: dict[str, str] | None = None) -> None:
        self._cond = threading.Condition(threading.RLock())
        self._state = _State()
        self._ids = itertools.count(1)
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ws_port = 0
        self._port = 0
        self._sockets: set[ServerConnection] = set()
        self._stop: asyncio.Event | None = None
        for mobile, user in (users or {}).items():
            self.add_user(user, mobile=mobile)

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeDingTalk:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        http = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        http.start()
        ready = threading.Event()
        ws = threading.Thread(target=self._run_ws, args=(ready,), daemon=True)
        ws.start()
        if not ready.wait(5):
            raise RuntimeError("fake Stream gateway did not start")
        self._threads = [http, ws]
        return self

    def stop(self) -> None:
        """Idempotent: a test may take the fake down before its fixture does."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def __enter__(self) -> FakeDingTalk:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is not None:
            self._port = int(self._server.server_address[1])
        return f"http://127.0.0.1:{self._port}"

    # ---- scripting ------------------------------------------------------------------------

    def fail(self, kind: str, user: str | None = None, *, times: int = 1, seconds: float = 5):  # type: ignore[no-untyped-def]
        """The next ``times`` batchSend calls to ``user`` (anyone: None) fail this way."""
        with self._cond:
            self._state.faults.setdefault(user, deque()).extend([(kind, seconds)] * times)

    def revoke_tokens(self) -> None:
        with self._cond:
            self._state.tokens.clear()

    def add_user(self, user: str, *, mobile: str | None = None) -> None:
        with self._cond:
            if mobile:
                self._state.mobiles[mobile] = user

    def add_file(self, content: bytes, name: str = "photo.jpg") -> str:
        code = "dc-" + secrets.token_urlsafe(24)
        with self._cond:
            self._state.files[code] = (content, name)
        return code

    # ---- what happened --------------------------------------------------------------------

    @property
    def tokens_issued(self) -> int:
        with self._cond:
            return self._state.issued

    def requests(self, path: str | None = None) -> list[Request]:
        with self._cond:
            return [r for r in self._state.requests if path is None or r.path == path]

    def sends(self, user: str | None = None) -> list[Request]:
        """Every batchSend request (accepted or not), optionally to one user."""
        return [
            r
            for r in self.requests("/v1.0/robot/oToMessages/batchSend")
            if user is None or r.user == user
        ]

    def sent(self, user: str | None = None) -> list[Sent]:
        with self._cond:
            return [s for s in self._state.sent if user is None or s.user == user]

    @property
    def subscriptions(self) -> list[Any]:
        with self._cond:
            return list(self._state.subscriptions)

    def ack(self, message_id: str) -> dict[str, Any] | None:
        with self._cond:
            return self._state.acks.get(message_id)

    async def until(self, predicate: Any, timeout: float = 10, what: str = "") -> Any:
        """Wait (without blocking the loop) until ``predicate()`` is truthy; return it."""
        deadline = time.monotonic() + timeout
        while True:
            found = predicate()
            if found:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"fake DingTalk: {what or predicate} not seen in {timeout}s")
            await asyncio.sleep(0.01)

    async def until_sent(self, user: str, count: int, timeout: float = 10) -> list[Sent]:
        return await self.until(
            lambda: (found := self.sent(user)) and len(found) >= count and found,
            timeout,
            f"{count} messages to {user}",
        )

    async def until_connected(self, timeout: float = 10) -> None:
        await self.until(lambda: self._sockets, timeout, "a Stream connection")

    # ---- pushes over the websocket ----------------------------------------------------------

    def push(self, topic: str, data: dict[str, Any]) -> str:
        """One CALLBACK frame on every open connection; its messageId (see :meth:`ack`)."""
        message_id = uuid.uuid4().hex
        frame = {
            "specVersion": "1.0",
            "type": "CALLBACK",
            "headers": {
                "appId": "fake-app",
                "connectionId": "fake-connection",
                "contentType": "application/json",
                "messageId": message_id,
                "time": str(int(time.time() * 1000)),
                "topic": topic,
            },
            "data": json.dumps(data, ensure_ascii=False),
        }
        assert self._loop is not None
        sockets = list(self._sockets)
        if not sockets:
            raise RuntimeError("no Stream connection to push to")
        for socket in sockets:
            asyncio.run_coroutine_threadsafe(
                socket.send(json.dumps(frame, ensure_ascii=False)), self._loop
            ).result(5)
        return message_id

    def _robot_message(self, user: str, msgtype: str, **content: Any) -> dict[str, Any]:
        n = next(self._ids)
        return {
            "conversationId": f"cid-{user}",
            "conversationType": "1",
            "chatbotCorpId": "dingcorp",
            "chatbotUserId": "$:LWCP_v1:$robot",
            "msgId": f"msg{n:06d}",
            "senderNick": user,
            "isAdmin": False,
            "senderStaffId": user,
            "sessionWebhookExpiredTime": int(time.time() * 1000) + 5_400_000,
            "createAt": int(time.time() * 1000),
            "senderCorpId": "dingcorp",
            "senderId": f"$:LWCP_v1:${user}",
            "sessionWebhook": f"{self.url}/robot/sendBySession?session={user}",
            "robotCode": ROBOT_CODE,
            "msgtype": msgtype,
            **content,
        }

    def push_text(self, user: str, text: str, *, group: bool = False) -> str:
        data = self._robot_message(user, "text", text={"content": text})
        if group:
            data["conversationType"] = "2"
        return self.push(ROBOT_TOPIC, data)

    def push_picture(self, user: str, content: bytes) -> tuple[str, str]:
        """A photo sent to the robot; (messageId, downloadCode)."""
        code = self.add_file(content, "photo.jpg")
        data = self._robot_message(
            user, "picture", content={"downloadCode": code, "pictureDownloadCode": code}
        )
        return self.push(ROBOT_TOPIC, data), code

    def push_file(self, user: str, content: bytes, name: str) -> tuple[str, str]:
        code = self.add_file(content, name)
        data = self._robot_message(
            user, "file", content={"downloadCode": code, "fileName": name, "spaceId": "1"}
        )
        return self.push(ROBOT_TOPIC, data), code

    def tap(self, user: str, sent: Sent, label_part: str) -> str:
        """The person taps a button of a message: the client sends the link's text."""
        found = [text for label, text in sent.buttons.items() if label_part in label]
        if not found:
            raise AssertionError(f"no button with {label_part!r} in {list(sent.buttons)}")
        return self.push_text(user, found[0])

    def push_card_callback(self, user: str, action: str, track: str = "card-1") -> str:
        content = {"cardPrivateData": {"actionIds": ["button"], "params": {"action": action}}}
        data = {
            "extension": "{}",
            "corpId": "dingcorp",
            "userId": user,
            "outTrackId": track,
            "content": json.dumps(content),
            "type": "actionCallback",
            "spaceType": "im",
            "spaceId": f"cid-{user}",
            "userIdType": 1,
        }
        return self.push(CARD_TOPIC, data)

    def drop_connections(self) -> None:
        """The gateway closes every websocket (the client must reconnect).  Not waited for:
        the closing handshake needs the client's loop, which may be the caller's."""
        assert self._loop is not None
        for socket in list(self._sockets):
            asyncio.run_coroutine_threadsafe(socket.close(), self._loop)

    # ---- the websocket side -----------------------------------------------------------------

    def _run_ws(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop

        async def main() -> None:
            self._stop = asyncio.Event()
            async with serve(self._socket, "127.0.0.1", 0) as server:
                self._ws_port = next(iter(server.sockets)).getsockname()[1]
                ready.set()
                await self._stop.wait()

        loop.run_until_complete(main())
        loop.close()

    async def _socket(self, socket: ServerConnection) -> None:
        assert socket.request is not None
        query = parse_qs(urlsplit(socket.request.path).query)
        ticket = (query.get("ticket") or [""])[0]
        with self._cond:
            valid = ticket in self._state.tickets
            self._state.tickets.discard(ticket)  # a ticket opens one connection
            if valid:
                self._state.connections += 1
        if not valid:
            await socket.close(4001, "invalid ticket")
            return
        self._sockets.add(socket)
        try:
            async for raw in socket:
                frame = json.loads(raw)
                message_id = (frame.get("headers") or {}).get("messageId")
                with self._cond:
                    if message_id:
                        self._state.acks[message_id] = frame
                    self._cond.notify_all()
        except Exception:  # a client that goes away mid-frame
            pass
        finally:
            self._sockets.discard(socket)

    # ---- the HTTP side ------------------------------------------------------------------------

    def _serve(self, handler: _Handler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        token = (
            handler.headers.get("x-acs-dingtalk-access-token")
            or (parse_qs(parts.query).get("access_token") or [None])[0]
        )
        request = Request(handler.command, parts.path, body, token)
        users = body.get("userIds") if isinstance(body, dict) else None
        if isinstance(users, list) and users:
            request.user = str(users[0])
        with self._cond:
            self._state.requests.append(request)
        status, payload, delay = self._answer(request, parts.path)
        if delay:
            time.sleep(delay)
        request.status = status
        if isinstance(payload, bytes):
            data, kind = payload, "application/octet-stream"
        else:
            data, kind = json.dumps(payload, ensure_ascii=False).encode(), "application/json"
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", kind)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout)
            pass
        with self._cond:
            self._cond.notify_all()

    def _answer(self, request: Request, path: str) -> tuple[int, Any, float]:
        body = request.body if isinstance(request.body, dict) else {}
        if path == "/v1.0/oauth2/accessToken":
            if body.get("appKey") != CLIENT_ID or body.get("appSecret") != CLIENT_SECRET:
                return 400, {"code": "invalidClientIdOrSecret", "message": "无效的 appKey"}, 0
            token = secrets.token_hex(16)
            with self._cond:
                self._state.tokens.add(token)
                self._state.issued += 1
            return 200, {"accessToken": token, "expireIn": 7200}, 0
        if path == "/v1.0/gateway/connections/open":
            if body.get("clientId") != CLIENT_ID or body.get("clientSecret") != CLIENT_SECRET:
                return 401, {"code": "InvalidAuthentication", "message": "bad credentials"}, 0
            ticket = secrets.token_urlsafe(16)
            with self._cond:
                self._state.tickets.add(ticket)
                self._state.subscriptions = body.get("subscriptions") or []
            return 200, {"endpoint": f"ws://127.0.0.1:{self._ws_port}/connect", "ticket": ticket}, 0
        if path.startswith("/files/"):
            code = path.removeprefix("/files/")
            with self._cond:
                found = self._state.files.get(code)
            return (200, found[0], 0) if found else (404, {"code": "notFound"}, 0)
        with self._cond:
            authorised = request.token in self._state.tokens
        if not authorised:
            if path.startswith("/topapi/"):
                return 200, {"errcode": 40014, "errmsg": "不合法的access_token"}, 0
            return 401, {"code": "InvalidAuthentication", "message": "不合法的access_token"}, 0
        if path == "/v1.0/robot/oToMessages/batchSend":
            return self._batch_send(request, body)
        if path == "/v1.0/robot/messageFiles/download":
            with self._cond:
                known = body.get("downloadCode") in self._state.files
            if body.get("robotCode") != ROBOT_CODE or not known:
                return 400, {"code": "invalidParameter", "message": "downloadCode 无效"}, 0
            return 200, {"downloadUrl": f"{self.url}/files/{body['downloadCode']}"}, 0
        if path == "/topapi/v2/user/getbymobile":
            with self._cond:
                user = self._state.mobiles.get(str(body.get("mobile")))
            if user is None:
                return 200, {"errcode": 60121, "errmsg": "找不到该用户"}, 0
            return 200, {"errcode": 0, "errmsg": "ok", "result": {"userid": user}}, 0
        return 404, {"code": "notFound", "message": path}, 0

    def _batch_send(self, request: Request, body: dict[str, Any]) -> tuple[int, Any, float]:
        users = body.get("userIds")
        if body.get("robotCode") != ROBOT_CODE:
            return 400, {"code": "invalidParameter.robotCode", "message": "robotCode 无效"}, 0
        if not isinstance(users, list) or not 1 <= len(users) <= 20:
            return 400, {"code": "invalidParameter.userIds", "message": "userIds 1–20"}, 0
        fault = self._take_fault(str(users[0]))
        if fault is not None:
            kind, seconds = fault
            if kind == THROTTLED:
                return (
                    429,
                    {"code": "Forbidden.AccessDenied.QpsLimitForApi", "message": "QPS 超限"},
                    0,
                )
            if kind == IP_BANNED:  # the IP dimension's answer: no error code, a wait in minutes
                ban = {"status": 1111, "wait": seconds / 60, "source": "x5", "punish": "deny"}
                return 403, ban, 0
            if kind == QUOTA:
                return 403, {"code": "Forbidden.AccessDenied.ApiCountLimitForOrg"}, 0
            if kind == SERVER_ERROR:
                return 500, {"code": "systemError", "message": "系统繁忙"}, 0
            if kind == SLOW:
                return 200, {"processQueryKey": "late"}, seconds
            if kind == GONE:
                return 200, {"processQueryKey": "q-none", "invalidStaffIdList": users}, 0
            if kind == FLOW_CONTROLLED:
                return 200, {"processQueryKey": "q-none", "flowControlledStaffIdList": users}, 0
            return 400, {"code": "invalidParameter.msgParam", "message": "消息格式错误"}, 0
        key, raw = body.get("msgKey"), body.get("msgParam")
        if key not in MSG_KEYS or not isinstance(raw, str):
            return 400, {"code": "invalidParameter.msgKey", "message": f"msgKey {key}"}, 0
        if len(raw.encode()) > MAX_MSG_PARAM:
            return 400, {"code": "invalidParameter.msgParam", "message": "msgParam 过长"}, 0
        param = json.loads(raw)
        missing = [name for name in MSG_KEYS[key] if not param.get(name)]
        if missing:
            return 400, {"code": "invalidParameter.msgParam", "message": f"缺少 {missing}"}, 0
        query_key = f"pqk-{next(self._ids)}"
        with self._cond:
            for user in users:
                self._state.sent.append(Sent(str(user), key, param, query_key))
        return 200, {"processQueryKey": query_key}, 0

    def _take_fault(self, user: str) -> tuple[str, float] | None:
        with self._cond:
            for key in (user, None):
                queue = self._state.faults.get(key)
                if queue:
                    return queue.popleft()
        return None
