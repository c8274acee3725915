"""DingTalk, send side: a neutral message rendered (render.py) and sent as the robot's 1:1
message to the person's userid (the binding's chat id).

Limits (:attr:`DingTalkAdapter.limits`, strict windows in bot.pacing):

- overall 20 a second: an internal app's per-API frequency limit is 20 calls a second
  (assumed from DingTalk's rate-limit rules; the page quoted in openapi.py documents the
  dimensions and the global/IP figures, and 40 a second for third-party apps);
- per person one a second, and 500 a day: the documented daily cap of work notifications to one
  user from an internal app (https://developer.alibaba.com/docs/api.htm?apiId=37024), applied
  to robot messages too as a bound that a reminder bot never needs to approach.  DingTalk
  itself reports a user sent to too often in ``flowControlledStaffIdList`` (retried after a
  minute, openapi.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.adapters.base import Delivery, DeliveryError, RateLimits
from bot.adapters.dingtalk.openapi import OpenApi
from bot.clock import Clock

if TYPE_CHECKING:  # the renderer is imported when a message is sent (the directory needs none)
    from bot.messages import Button, OutboundMessage

PLATFORM = "dingtalk"
LIMITS = RateLimits(overall_per_second=20, per_chat_per_second=1, per_chat=((500, 86_400.0),))
MAX_USERID = 64


def default_encode(button: Button) -> str:
    """Unsigned placeholder until the signed encoder is injected."""
    return f"{button.action}:{button.ref}"


class DingTalkAdapter:
    """The ChatAdapter for DingTalk (send side)."""

    platform = PLATFORM

    def __init__(
        self,
        api: OpenApi,
        *,
        clock: Clock,
        encode: Callable[[Button], str] = default_encode,
        tz: ZoneInfo | None = None,
    ) -> None:
        self.api, self.clock, self._encode = api, clock, encode
        self.tz = tz or ZoneInfo("Asia/Shanghai")
        self.limits: RateLimits | None = LIMITS

    async def send(self, message: OutboundMessage) -> Delivery:
        """Render and send; the processQueryKey is the message's reference."""
        user = message.chat_id
        if not user or len(user) > MAX_USERID:
            raise DeliveryError(f"not a DingTalk userid: {user[:20]!r}", permanent=True)
        from bot.adapters.dingtalk.render import robot_message

        sent_at = self.clock.now().astimezone(self.tz).strftime("%Y-%m-%d %H:%M")
        key, param = robot_message(message.message, encode=self._encode, sent_at=sent_at)
        query_key = await self.api.send_to_user(user, key, param)
        return Delivery(message_ref=query_key)

    async def stop(self) -> None:
        await self.api.close()
