"""WeCom, send side: app messages (应用消息) to a member's userid, or say why not.

Errors are mapped once, in :func:`delivery_error`, from the global error codes
(https://developer.work.weixin.qq.com/document/path/90455) and 发送应用消息
(https://developer.work.weixin.qq.com/document/path/90236):

- **recipient gone** (this binding is unreachable, the admins are told): 81013 (every
  recipient invalid or out of the app's visible range -- what a single bad userid gives),
  40003 / 40031 (invalid userid), 60111 (userid not found), 60011 (no permission for that
  member), and a userid the answer lists under ``invaliduser`` or ``unlicenseduser``;
- **throttled**: 45009 (接口调用超过限制) and 45033 (concurrent calls): WeCom states no wait;
  its blocks last 60 s for a minute limit (访问频率限制, path/90454), so the adapter waits
  :attr:`WeComAdapter.throttle_seconds` (60 by default);
- **our message refused** (permanent, nobody blamed): 40008, 40035, 40058, 41011, 44004, 45002,
  42014 (a task_id used before), 40063, 40094;
- **our configuration** (not the member's fault: transient, logged as an error, and the
  dispatcher's circuit stops the flood): 40001 (secret), 40013 (corp id), 40056 / 301002
  (agent id), 48002 (API not allowed), 60020 (the server's IP is not in 企业可信IP);
- everything else, -1 (系统繁忙), 5xx and network trouble: transient; no answer in time:
  ``timed_out`` (WeCom may have delivered it).

Pacing (:attr:`WeComAdapter.limits`) follows 访问频率限制 / 发送应用消息频率: "每应用对同一个成员
不可超过30次/分钟，1000次/小时，超过部分会被丢弃不下发" -- over those a message is *dropped
without an error*, so pacing, not error handling, is what keeps them -- and "每应用不可超过账号
上限数*200人次/天".
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from bot.adapters.base import Delivery, DeliveryError, RateLimits
from bot.adapters.wecom.api import WeComApi, WeComApiError
from bot.adapters.wecom.render import card_of, new_task_id, render
from bot.clock import Clock
from bot.messages import Button, OutboundMessage
from bot.texts import DEFAULT_LANG

log = logging.getLogger("dutybot.wecom")

GONE_CODES = frozenset({81013, 40003, 40031, 60111, 60011})
THROTTLE_CODES = frozenset({45009, 45033})
REFUSED_CODES = frozenset({40008, 40035, 40058, 41011, 44004, 45002, 42014, 40063, 40094})
CONFIG_CODES = frozenset({40001, 40013, 40056, 301002, 48002, 60020})
CONFIG_HINTS = {
    60020: "the server's IP is not in the app's 企业可信IP list",
    40001: "DUTYBOT_WECOM_SECRET is wrong",
    40013: "DUTYBOT_WECOM_CORP_ID is wrong",
    40056: "DUTYBOT_WECOM_AGENT_ID is wrong",
    301002: "DUTYBOT_WECOM_AGENT_ID does not match the secret",
    48002: "the app may not call this API",
}
RESPONSE_CODE_TTL = timedelta(hours=72)  # 更新模版卡片消息: a response_code lives 72 hours
MAX_CARDS = 20_000  # response codes kept (bounded memory; the oldest go first)


def rate_limits(account_limit: int) -> RateLimits:
    """WeCom's documented limits for one app (发送应用消息频率, path/90454)."""
    return RateLimits(
        overall_per_second=20,  # not documented for messages; a modest, even pace
        per_chat_per_second=1,
        per_chat=((30, 60.0), (1000, 3600.0)),  # 30 a minute, 1,000 an hour per member
        overall=((account_limit * 200, 86_400.0),),  # 账号上限数 × 200 people a day
    )


def delivery_error(exc: BaseException, *, throttle_seconds: float = 60.0) -> DeliveryError:
    """The one place that decides what a failed send means."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, WeComApiError):
        code, reason = exc.errcode, f"WeCom errcode {exc.errcode}: {exc.errmsg}"
        if code in GONE_CODES:
            return DeliveryError(reason, permanent=True, recipient_gone=True)
        if code in THROTTLE_CODES:
            return DeliveryError(reason, permanent=False, retry_after=throttle_seconds)
        if code in REFUSED_CODES:
            return DeliveryError(reason, permanent=True)
        if code in CONFIG_CODES:
            log.error("WeCom refused our configuration (%d): %s", code, CONFIG_HINTS[code])
        return DeliveryError(reason, permanent=False)
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return DeliveryError(
            f"{type(exc).__name__}: no answer in time", timed_out=True, permanent=False
        )
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        if status == 429:
            return DeliveryError("HTTP 429", permanent=False, retry_after=throttle_seconds)
        return DeliveryError(f"HTTP {status}", permanent=False)
    if isinstance(exc, httpx.HTTPError):
        return DeliveryError(f"{type(exc).__name__}: {exc}"[:300], permanent=False)
    log.exception("unexpected error while sending to WeCom", exc_info=exc)
    return DeliveryError(f"{type(exc).__name__}: {exc}"[:300], permanent=False)


@dataclass
class CardCodes:
    """The response codes that may update each card (one use each, 72 hours): the one the send
    returned, and one per click event.  Kept in memory: a restart loses them, and then a card
    keeps its buttons (pressing one again is answered "already done")."""

    clock: Clock
    _codes: OrderedDict[str, list[tuple[str, datetime]]] = field(default_factory=OrderedDict)

    def add(self, task_id: str, code: str | None) -> None:
        if not task_id or not code:
            return
        self._codes.setdefault(task_id, []).append((code, self.clock.now()))
        self._codes.move_to_end(task_id)
        while len(self._codes) > MAX_CARDS:
            self._codes.popitem(last=False)

    def take(self, task_id: str) -> str | None:
        """The newest code still valid for this card (used up by taking it)."""
        codes = self._codes.get(task_id, [])
        cutoff = self.clock.now() - RESPONSE_CODE_TTL
        while codes:
            code, at = codes.pop()
            if at > cutoff:
                return code
        return None


class WeComAdapter:
    """The ChatAdapter for WeCom (send side); ``chat_id`` is the member's userid."""

    platform = "wecom"

    def __init__(
        self,
        api: WeComApi,
        *,
        agent_id: int,
        clock: Clock,
        encode: Callable[[Button], str],
        account_limit: int = 200,
        lang: str = DEFAULT_LANG,
    ) -> None:
        self.api, self.agent_id, self.clock = api, agent_id, clock
        self._encode = encode
        self.lang = lang
        self.limits: RateLimits | None = rate_limits(account_limit)
        self.throttle_seconds = 60.0
        self.cards = CardCodes(clock)
        self.task_id: Callable[[], str] = new_task_id

    def __repr__(self) -> str:
        return f"WeComAdapter(agent_id={self.agent_id}, api={self.api!r})"

    async def start(self) -> None:
        """Fetch the token once, so a wrong corp id or secret shows at start."""
        await self.api.token()

    async def stop(self) -> None:
        await self.api.close()

    async def send(self, message: OutboundMessage) -> Delivery:
        """The message as one card, or markdown parts and then the cards of its buttons."""
        card, rows = card_of(message.message)
        rendered = render(
            card,
            rows,
            encode=self._encode,
            lang=self.lang,
            task_id=self.task_id,
        )
        ref = ""
        for index, body in enumerate(rendered.bodies):
            try:
                ref = await self.post(message.chat_id, body) or ref
            except Exception as exc:  # every failure leaves as DeliveryError
                error = delivery_error(exc, throttle_seconds=self.throttle_seconds)
                if index:  # a retry repeats the parts already delivered
                    error = DeliveryError(
                        f"{error.reason} (after {index} of {len(rendered.bodies)} parts)",
                        permanent=error.permanent,
                        retry_after=error.retry_after,
                        recipient_gone=error.recipient_gone,
                        timed_out=error.timed_out,
                    )
                raise error from exc
        return Delivery(message_ref=(rendered.task_ids or [ref])[-1] or "wecom")

    async def post(self, userid: str, body: dict[str, Any]) -> str:
        """One ``/cgi-bin/message/send``; the card's task_id, else the msgid."""
        data = await self.api.call(
            "/cgi-bin/message/send",
            json={"touser": userid, "agentid": self.agent_id, **body},
        )
        lowered = userid.lower()  # "返回包中的userid，不区分大小写，统一转为小写"
        for key in ("invaliduser", "unlicenseduser"):
            listed = {u for u in str(data.get(key) or "").lower().split("|") if u}
            if lowered in listed:
                raise DeliveryError(
                    f"WeCom lists {userid} under {key}", permanent=True, recipient_gone=True
                )
        task_id = str(body.get("template_card", {}).get("task_id", ""))
        self.cards.add(task_id, data.get("response_code"))
        return task_id or str(data.get("msgid") or "")

    async def send_file(self, userid: str, file_name: str, content: bytes) -> None:
        media_id = await self.api.upload(kind="file", file_name=file_name, content=content)
        await self.post(userid, {"msgtype": "file", "file": {"media_id": media_id}})

    async def update_card(self, userid: str, task_id: str, label: str) -> bool:
        """Turn a card's buttons into one unclickable ``label`` (更新模版卡片消息,
        https://developer.work.weixin.qq.com/document/path/94888); False when no response
        code is left for it or WeCom refused."""
        code = self.cards.take(task_id)
        if code is None:
            return False
        try:
            await self.api.call(
                "/cgi-bin/message/update_template_card",
                json={
                    "userids": [userid],
                    "agentid": self.agent_id,
                    "response_code": code,
                    "button": {"replace_name": label[:20]},
                },
            )
        except (WeComApiError, httpx.HTTPError) as exc:
            log.warning("updating card %s failed: %s", task_id, type(exc).__name__)
            return False
        return True
