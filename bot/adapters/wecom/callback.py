"""The callback URL (接收消息): WeCom's GET check, then every POSTed event verified and decrypted.

From 接收消息与事件 (https://developer.work.weixin.qq.com/document/path/90930) and the event
and message formats (path/90239 消息格式, path/90240 事件格式):

- **URL check** -- ``GET ?msg_signature&timestamp&nonce&echostr``: the signature covers
  ``echostr``; the answer, within a second, is its decrypted plaintext, nothing else.
- **Events** -- ``POST`` the same query with ``<xml><ToUserName/><Encrypt/><AgentID/></xml>``.
  Refused before anything is decrypted: a body over 64 KiB, XML with a DTD or entities
  (defusedxml), a wrong ``msg_signature`` (constant-time compare), a timestamp more than the
  replay window away from now, a ``timestamp``+``nonce`` pair seen before.  After
  decryption: a plaintext that names another corp id or another agent id.
- **Retries** -- WeCom retries an event it got no 200 for within five seconds, up to three
  times; it asks to deduplicate by MsgId, and events by FromUserName + CreateTime.  A
  duplicate (or a replay) is answered 200 with an empty body and changes nothing.  The answer
  is always empty: replies go out as app messages, not as passive replies.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot.adapters.wecom.crypto import CryptoError, WeComCrypto
from bot.clock import Clock

log = logging.getLogger("dutybot.wecom")

MAX_BODY = 64 * 1024
MAX_SEEN = 100_000  # replay and duplicate keys kept (their window bounds them first)

Handler = Callable[[dict[str, str]], Awaitable[None]]


class Refused(Exception):
    """A request we do not act on; ``status`` is what it is answered."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status, self.why = status, why


def parse_xml(data: bytes | str) -> dict[str, str]:
    """A flat WeCom XML packet as {tag: text}; nested lists (SelectedItems) are not needed."""
    try:
        root: Element = fromstring(data, forbid_dtd=True)
    except (DefusedXmlException, SyntaxError, ValueError) as exc:
        raise Refused(400, f"unreadable XML: {type(exc).__name__}") from exc
    if root.tag != "xml":
        raise Refused(400, "not a WeCom XML packet")
    return {child.tag: (child.text or "").strip() for child in root}


class Seen:
    """Keys seen within the last ``window`` seconds (replay and retry detection)."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._keys: OrderedDict[str, float] = OrderedDict()

    def check_and_add(self, key: str, now: float) -> bool:
        """True if ``key`` was seen within the window (and then nothing changes)."""
        while self._keys:
            at = next(iter(self._keys.values()))
            if now - at <= self.window and len(self._keys) < MAX_SEEN:
                break
            self._keys.popitem(last=False)
        if key in self._keys:
            return True
        self._keys[key] = now
        return False


class Callback:
    """The Starlette route of one app's callback URL; ``handle`` gets each new event."""

    def __init__(
        self,
        *,
        crypto: WeComCrypto,
        corp_id: str,
        agent_id: int,
        clock: Clock,
        handle: Handler,
        path: str = "/wecom/callback",
        window: float = 300.0,
    ) -> None:
        self.crypto, self.corp_id, self.agent_id = crypto, corp_id, agent_id
        self.clock, self.handle, self.path, self.window = clock, handle, path, window
        self._nonces = Seen(2 * window)  # a replay inside the window; older ones fail the clock
        self._events = Seen(24 * 3600.0)  # WeCom's own retries come within seconds
        self.refused: dict[str, int] = {}  # why → how often (for tests and metrics)

    def routes(self) -> list[Any]:
        return [Route(self.path, self.endpoint, methods=["GET", "POST"])]

    async def endpoint(self, request: Request) -> Response:
        try:
            if request.method == "GET":
                return PlainTextResponse(self._echo(request))
            fields = await self._event(request)
            if fields is not None:
                await self.handle(fields)
            return PlainTextResponse("")
        except Refused as refused:
            self.refused[refused.why] = self.refused.get(refused.why, 0) + 1
            log.warning("WeCom callback refused (%s): %s", refused.status, refused.why)
            return PlainTextResponse("", status_code=refused.status)

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def _query(self, request: Request) -> tuple[str, str, str]:
        query = request.query_params  # already URL-decoded, as the documentation asks
        signature = query.get("msg_signature", "")
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        if not (signature and timestamp.isdigit() and nonce) or len(nonce) > 64:
            raise Refused(400, "missing msg_signature, timestamp or nonce")
        return signature, timestamp, nonce

    def _echo(self, request: Request) -> str:
        signature, timestamp, nonce = self._query(request)
        echo = request.query_params.get("echostr", "")
        if not self.crypto.verify(signature, timestamp, nonce, echo):
            raise Refused(403, "bad signature")
        try:
            return self.crypto.decrypt(echo).decode()
        except (CryptoError, UnicodeDecodeError) as exc:
            raise Refused(403, "echostr not ours") from exc

    async def _event(self, request: Request) -> dict[str, str] | None:
        signature, timestamp, nonce = self._query(request)
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
            raise Refused(413, "body too large")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise Refused(413, "body too large")
        outer = parse_xml(body)
        encrypted = outer.get("Encrypt", "")
        if not self.crypto.verify(signature, timestamp, nonce, encrypted):
            raise Refused(403, "bad signature")
        now = self._now()
        if abs(now - int(timestamp)) > self.window:
            raise Refused(403, "timestamp outside the replay window")
        if self._nonces.check_and_add(f"{timestamp}:{nonce}", now):
            log.info("WeCom callback replayed (same timestamp and nonce): ignored")
            self.refused["replay"] = self.refused.get("replay", 0) + 1
            return None
        try:
            fields = parse_xml(self.crypto.decrypt(encrypted))
        except CryptoError as exc:
            raise Refused(403, f"not decryptable: {exc}") from exc
        if fields.get("ToUserName") != self.corp_id:
            raise Refused(403, "another corp's event")
        agent = fields.get("AgentID", "")
        if agent and agent != str(self.agent_id):
            raise Refused(403, "another app's event")
        if self._events.check_and_add(_event_key(fields), now):
            log.info("WeCom retried an event already handled: ignored")
            self.refused["duplicate"] = self.refused.get("duplicate", 0) + 1
            return None
        return fields


def _event_key(fields: dict[str, str]) -> str:
    """MsgId for messages; FromUserName + CreateTime (and what was clicked) for events."""
    if fields.get("MsgId"):
        return "msg:" + fields["MsgId"]
    parts = ("FromUserName", "CreateTime", "Event", "EventKey", "TaskId", "ResponseCode")
    return "event:" + "|".join(fields.get(p, "") for p in parts)
