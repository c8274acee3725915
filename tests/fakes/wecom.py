"""A fake WeCom (企业微信) server, and a client that plays WeCom's side of the callback URL.

:class:`FakeWeCom` answers over real HTTP on 127.0.0.1 what the adapter calls, as documented:
``/cgi-bin/gettoken`` (tokens can be expired at will: 42001 then), ``/cgi-bin/message/send``
(checks the body against the documented limits, answers 81013 for a userid outside the app's
visible range, *drops without an error* what exceeds 30 a minute / 1,000 an hour per member,
returns a ``response_code`` for button cards), ``/cgi-bin/message/update_template_card`` (each
response code works once), ``/cgi-bin/media/get`` and ``/cgi-bin/media/upload``,
``/cgi-bin/user/get`` and ``/cgi-bin/user/getuserid``.  Scripted failures answer in WeCom's
terms (an errcode, a slow answer, a 502 page).

:class:`CallbackClient` POSTs callbacks exactly as WeCom does: the XML event encrypted with
the app's EncodingAESKey, under ``msg_signature``/``timestamp``/``nonce``.  Its encryption is
written here from the documentation on purpose -- a second implementation, so the adapter's
decryption is checked against something other than itself (and both against the official
example in tests/test_wecom_crypto.py).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import re
import struct
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

CORP_ID = "ww0123456789abcdef"
SECRET = "fake-wecom-app-secret-0123456789"
AGENT_ID = 1000002
TOKEN = "fakeCallbackToken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters
TASK_ID = re.compile(r"^[0-9a-zA-Z_\-@]{1,128}$")
PER_MINUTE, PER_HOUR = 30, 1000  # 每应用对同一个成员不可超过30次/分钟，1000次/小时


@dataclass(frozen=True)
class Fault:
    """A scripted answer: an errcode, and/or a delay before answering (the message is still
    delivered after a delay, as a real slow answer would be), or a gateway error page."""

    errcode: int | None = None
    errmsg: str = ""
    delay: float = 0.0
    status: int | None = None

    @classmethod
    def error(cls, errcode: int, errmsg: str = "") -> Fault:
        return cls(errcode=errcode, errmsg=errmsg or f"fake error {errcode}")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        return cls(delay=seconds)

    @classmethod
    def bad_gateway(cls) -> Fault:
        return cls(status=502)


@dataclass
class Call:
    path: str
    params: dict[str, str]
    body: dict[str, Any]
    at: float
    answer: dict[str, Any] = field(default_factory=dict)
    fault: Fault | None = None

    @property
    def ok(self) -> bool:
        return self.answer.get("errcode") == 0 and not self.answer.get("_dropped")

    @property
    def touser(self) -> str:
        return str(self.body.get("touser", ""))


@dataclass
class Sent:
    """One message a member received."""

    userid: str
    body: dict[str, Any]
    msgid: str
    response_code: str | None = None

    @property
    def card(self) -> dict[str, Any] | None:
        return self.body.get("template_card")

    @property
    def task_id(self) -> str:
        return str((self.card or {}).get("task_id", ""))

    def buttons(self) -> dict[str, str]:
        """Label → key of a card's buttons."""
        return {b["text"]: b["key"] for b in (self.card or {}).get("button_list", [])}

    def key(self, label_part: str) -> str:
        found = [key for label, key in self.buttons().items() if label_part in label]
        assert found, f"no button with {label_part!r} in {list(self.buttons())}"
        return found[0]

    @property
    def text(self) -> str:
        from bot.adapters.wecom.render import text_of

        return text_of(self.body)


class ApiError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errcode, self.errmsg = errcode, errmsg


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeWeCom


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self.server.fake._serve(self)

    def do_POST(self) -> None:
        self.server.fake._serve(self)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the query carries the secret and the token."""


class FakeWeCom:
    """Thread-safe: tests, the adapter's client and the handler threads share it."""

    def __init__(
        self,
        *,
        corp_id: str = CORP_ID,
        secret: str = SECRET,
        agent_id: int = AGENT_ID,
        members: dict[str, str] | None = None,
    ) -> None:
        self.corp_id, self.secret, self.agent_id = corp_id, secret, agent_id
        # userid → mobile of the members in the app's visible range
        self.members: dict[str, str] = dict(members or {})
        self._lock = threading.RLock()
        self.calls: list[Call] = []
        self.sent: list[Sent] = []
        self.dropped: list[Sent] = []
        self.updates: list[dict[str, Any]] = []
        self.media: dict[str, tuple[bytes, str, str]] = {}  # media_id → content, name, type
        self.uploads: dict[str, tuple[bytes, str]] = {}
        self._tokens: set[str] = set()
        self._expired: set[str] = set()
        self._task_ids: set[str] = set()
        self._codes: dict[str, str] = {}  # valid response code → task_id
        self._faults: dict[tuple[str, str | None], deque[Fault]] = defaultdict(deque)
        self._per_member: dict[str, deque[float]] = defaultdict(deque)
        self._ids = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- life -----------------------------------------------------------------------------

    def __enter__(self) -> FakeWeCom:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # ---- scripting ------------------------------------------------------------------------

    def inject(self, path: str, *faults: Fault, userid: str | None = None) -> None:
        """Answer the next calls of ``path`` (for ``userid`` only, if given) with these."""
        with self._lock:
            self._faults[(path, userid)].extend(faults)

    def expire_tokens(self) -> None:
        """Every token issued so far answers 42001 from now on (WeCom may do so early)."""
        with self._lock:
            self._expired |= self._tokens
            self._tokens.clear()

    def add_media(
        self, content: bytes, *, name: str = "photo.jpg", kind: str = "image/jpeg"
    ) -> str:
        media_id = f"MEDIA{next(self._ids)}_" + hashlib.sha1(content).hexdigest()[:16]
        with self._lock:
            self.media[media_id] = (content, name, kind)
        return media_id

    def press(self, sent: Sent, label_part: str) -> dict[str, str]:
        """A click on one of a card's buttons: the event's fields, with a fresh response code
        that updates that card once."""
        code = "RC" + os.urandom(12).hex()
        with self._lock:
            self._codes[code] = sent.task_id
        return {
            "EventKey": sent.key(label_part),
            "TaskId": sent.task_id,
            "CardType": "button_interaction",
            "ResponseCode": code,
        }

    # ---- what happened --------------------------------------------------------------------

    def calls_to(self, path: str, userid: str | None = None) -> list[Call]:
        with self._lock:
            return [
                c for c in self.calls if c.path == path and (userid is None or c.touser == userid)
            ]

    def received(self, userid: str) -> list[Sent]:
        with self._lock:
            return [s for s in self.sent if s.userid == userid]

    def updates_of(self, task_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [u for u in self.updates if u["task_id"] == task_id]

    # ---- serving --------------------------------------------------------------------------

    def _serve(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        kind = handler.headers.get("content-type", "")
        body: dict[str, Any] = {}
        files: dict[str, tuple[str, bytes]] = {}
        if raw and kind.startswith("application/json"):
            body = json.loads(raw)
        elif raw and kind.startswith("multipart/form-data"):
            head = f"Content-Type: {kind}\r\nMIME-Version: 1.0\r\n\r\n".encode()
            for part in BytesParser(policy=HTTP).parsebytes(head + raw).iter_parts():
                data = part.get_payload(decode=True)
                files[str(part.get_param("name", header="content-disposition"))] = (
                    part.get_filename() or "",
                    data if isinstance(data, bytes) else b"",
                )
        call = Call(split.path, params, body, time.monotonic())
        with self._lock:
            self.calls.append(call)
            userid = str(body.get("touser")) if "touser" in body else None
            fault = None
            for key in ((split.path, userid), (split.path, None)):
                if self._faults.get(key):
                    fault = self._faults[key].popleft()
                    break
        call.fault = fault
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.status:
            page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            self._reply(handler, fault.status, page, "text/html")
            return
        if fault is not None and fault.errcode is not None:
            call.answer = {"errcode": fault.errcode, "errmsg": fault.errmsg}
            self._reply_json(handler, call.answer)
            return
        try:
            if split.path == "/cgi-bin/media/get":
                self._token(params)
                found = self.media.get(params.get("media_id", ""))
                if found is None:
                    raise ApiError(40007, "invalid media_id")
                content, name, media_type = found
                call.answer = {"errcode": 0}
                self._reply(
                    handler,
                    200,
                    content,
                    media_type,
                    {"Content-disposition": f'attachment; filename="{name}"'},
                )
                return
            call.answer = {
                "errcode": 0,
                "errmsg": "ok",
                **self._answer(split.path, params, body, files, call),
            }
        except ApiError as exc:
            call.answer = {"errcode": exc.errcode, "errmsg": exc.errmsg}
        self._reply_json(handler, {k: v for k, v in call.answer.items() if not k.startswith("_")})

    def _reply_json(self, handler: _Handler, data: dict[str, Any]) -> None:
        self._reply(
            handler,
            200,
            json.dumps(data, ensure_ascii=False).encode(),
            "application/json; charset=utf-8",
        )

    def _reply(
        self,
        handler: _Handler,
        status: int,
        body: bytes,
        kind: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    def _token(self, params: dict[str, str]) -> None:
        token = params.get("access_token")
        if not token:
            raise ApiError(41001, "access_token missing")
        with self._lock:
            if token in self._expired:
                raise ApiError(42001, "access_token expired")
            if token not in self._tokens:
                raise ApiError(40014, "invalid access_token")

    def _answer(
        self,
        path: str,
        params: dict[str, str],
        body: dict[str, Any],
        files: dict[str, tuple[str, bytes]],
        call: Call,
    ) -> dict[str, Any]:
        if path == "/cgi-bin/gettoken":
            if params.get("corpid") != self.corp_id:
                raise ApiError(40013, "invalid corpid")
            if params.get("corpsecret") != self.secret:
                raise ApiError(40001, "invalid credential")
            token = "TOKEN" + os.urandom(16).hex()
            with self._lock:
                self._tokens.add(token)
            return {"access_token": token, "expires_in": 7200}
        self._token(params)
        if path == "/cgi-bin/message/send":
            return self._send(body, call)
        if path == "/cgi-bin/message/update_template_card":
            code = str(body.get("response_code", ""))
            with self._lock:
                task_id = self._codes.pop(code, None)
                if task_id is None:
                    raise ApiError(40035, "invalid response_code")
                self.updates.append({"task_id": task_id, **body})
            return {}
        if path == "/cgi-bin/media/upload":
            name, content = files.get("media", ("", b""))
            if not content:
                raise ApiError(40006, "invalid file size")
            media_id = f"UP{next(self._ids)}"
            with self._lock:
                self.uploads[media_id] = (content, name)
            return {"type": params.get("type"), "media_id": media_id, "created_at": "0"}
        if path == "/cgi-bin/user/get":
            userid = params.get("userid", "")
            if userid not in self.members:
                raise ApiError(60111, "userid not found")
            return {"userid": userid, "name": userid}
        if path == "/cgi-bin/user/getuserid":
            mobile = str(body.get("mobile", ""))
            for userid, known in self.members.items():
                if known and known == mobile:
                    return {"userid": userid}
            raise ApiError(46004, "user not exist")
        raise ApiError(40035, f"unknown path {path}")

    def _send(self, body: dict[str, Any], call: Call) -> dict[str, Any]:
        if body.get("agentid") != self.agent_id:
            raise ApiError(40056, "invalid agentid")
        userid = str(body.get("touser", ""))
        kind = body.get("msgtype")
        if kind in ("text", "markdown"):
            content = str(body.get(kind, {}).get("content", ""))
            if not content:
                raise ApiError(44004, "empty content")
            if len(content.encode()) > 2048:
                raise ApiError(45002, "content size out of limit")
        elif kind == "template_card":
            self._check_card(body["template_card"])
        elif kind == "file":
            if body.get("file", {}).get("media_id") not in self.uploads:
                raise ApiError(40007, "invalid media_id")
        else:
            raise ApiError(40008, "invalid message type")
        if userid not in self.members:
            raise ApiError(81013, "user & party & tag all invalid")
        msgid = f"MSG{next(self._ids)}"
        card = body.get("template_card")
        code = None
        if card is not None:
            code = "RC" + os.urandom(12).hex()
        sent = Sent(userid, body, msgid, code)
        now = time.monotonic()
        with self._lock:
            window = self._per_member[userid]
            while window and now - window[0] > 3600:
                window.popleft()
            last_minute = sum(1 for t in window if now - t <= 60)
            if last_minute >= PER_MINUTE or len(window) >= PER_HOUR:
                self.dropped.append(sent)  # "超过部分会被丢弃不下发": no error, not delivered
                return {"msgid": msgid, "_dropped": True}
            window.append(now)
            self.sent.append(sent)
            if card is not None:
                self._task_ids.add(sent.task_id)
                assert code is not None
                self._codes[code] = sent.task_id
        answer: dict[str, Any] = {"msgid": msgid}
        if code is not None:
            answer["response_code"] = code
        return answer

    def _check_card(self, card: dict[str, Any]) -> None:
        if card.get("card_type") != "button_interaction":
            raise ApiError(40035, "unsupported card_type")
        task_id = str(card.get("task_id", ""))
        with self._lock:
            if not TASK_ID.match(task_id) or task_id in self._task_ids:
                raise ApiError(42014, "taskid has existed or empty or exceed max len")
        if not card.get("main_title", {}).get("title"):
            raise ApiError(40035, "main_title.title is required")
        buttons = card.get("button_list", [])
        keys = [b.get("key", "") for b in buttons]
        if not 1 <= len(buttons) <= 6 or len(set(keys)) != len(keys):
            raise ApiError(40035, "button_list must hold 1 to 6 buttons with unique keys")
        if any(not k or len(k.encode()) > 1024 for k in keys):
            raise ApiError(40035, "button key empty or longer than 1024 bytes")
        if len(card.get("horizontal_content_list", [])) > 6:
            raise ApiError(40035, "horizontal_content_list longer than 6")


# ---- WeCom's side of the callback URL --------------------------------------------------------


def _encrypt(aes_key: str, corp_id: str, plain: bytes) -> str:
    key = base64.b64decode(aes_key + "=")
    data = os.urandom(16) + struct.pack(">I", len(plain)) + plain + corp_id.encode()
    pad = 32 - len(data) % 32
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(
        encryptor.update(data + bytes([pad]) * pad) + encryptor.finalize()
    ).decode()


def _sign(token: str, *parts: str) -> str:
    return hashlib.sha1("".join(sorted([token, *parts])).encode()).hexdigest()


def _cdata(value: str) -> str:
    return f"<![CDATA[{value}]]>"


@dataclass
class Posted:
    """One callback as sent, to replay or tamper with."""

    params: dict[str, str]
    body: bytes
    response: httpx.Response


class CallbackClient:
    """Signs, encrypts and POSTs callbacks to ``url`` as WeCom does.  ``now`` gives the Unix
    timestamp to sign with (the clock the server under test reads)."""

    def __init__(
        self,
        url: str,
        *,
        now: Any,
        token: str = TOKEN,
        aes_key: str = AES_KEY,
        corp_id: str = CORP_ID,
        agent_id: int = AGENT_ID,
    ) -> None:
        self.url, self._now = url, now
        self.token, self.aes_key, self.corp_id, self.agent_id = token, aes_key, corp_id, agent_id
        self._ids = itertools.count(7_000_000_000_000_000_001)
        self.posted: list[Posted] = []

    def _timestamp(self) -> str:
        return str(int(self._now().timestamp()))

    def xml(self, userid: str, msg_type: str, **fields: str) -> str:
        inner = "".join(
            f"<{name}>{value if name in ('CreateTime', 'AgentID', 'MsgId') else _cdata(value)}"
            f"</{name}>"
            for name, value in fields.items()
        )
        return (
            f"<xml><ToUserName>{_cdata(self.corp_id)}</ToUserName>"
            f"<FromUserName>{_cdata(userid)}</FromUserName>"
            f"<CreateTime>{self._timestamp()}</CreateTime>"
            f"<MsgType>{_cdata(msg_type)}</MsgType>{inner}"
            f"<AgentID>{self.agent_id}</AgentID></xml>"
        )

    def envelope(
        self,
        plain: str,
        *,
        nonce: str | None = None,
        timestamp: str | None = None,
        signature: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        encrypted = _encrypt(self.aes_key, self.corp_id, plain.encode())
        timestamp = timestamp or self._timestamp()
        nonce = nonce or os.urandom(6).hex()
        params = {
            "msg_signature": signature or _sign(self.token, timestamp, nonce, encrypted),
            "timestamp": timestamp,
            "nonce": nonce,
        }
        body = (
            f"<xml><ToUserName>{_cdata(self.corp_id)}</ToUserName>"
            f"<Encrypt>{_cdata(encrypted)}</Encrypt><AgentID>{_cdata(str(self.agent_id))}</AgentID></xml>"
        ).encode()
        return params, body

    async def post(self, params: dict[str, str], body: bytes) -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(
                f"{self.url}?{urlencode(params)}",
                content=body,
                headers={"Content-Type": "text/xml"},
            )
        self.posted.append(Posted(params, body, response))
        return response

    async def send_xml(self, plain: str, **envelope: str) -> httpx.Response:
        params, body = self.envelope(plain, **envelope)
        return await self.post(params, body)

    async def text(self, userid: str, content: str) -> httpx.Response:
        return await self.send_xml(
            self.xml(userid, "text", Content=content, MsgId=str(next(self._ids)))
        )

    async def image(self, userid: str, media_id: str) -> httpx.Response:
        return await self.send_xml(
            self.xml(
                userid,
                "image",
                PicUrl="http://127.0.0.1/pic",
                MediaId=media_id,
                MsgId=str(next(self._ids)),
            )
        )

    async def click(self, userid: str, event: dict[str, str]) -> httpx.Response:
        return await self.send_xml(self.xml(userid, "event", Event="template_card_event", **event))

    async def verify_url(self, echo: str = "1616140317555161061") -> httpx.Response:
        """The GET WeCom sends when 接收消息 is saved: the answer must be ``echo``."""
        encrypted = _encrypt(self.aes_key, self.corp_id, echo.encode())
        timestamp, nonce = self._timestamp(), os.urandom(6).hex()
        params = {
            "msg_signature": _sign(self.token, timestamp, nonce, encrypted),
            "timestamp": timestamp,
            "nonce": nonce,
            "echostr": encrypted,
        }
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.get(f"{self.url}?{urlencode(params)}")
