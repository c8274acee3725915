"""``dutybot demo --platform wecom``: each message printed as WeCom would show it.

The demo's messages go through the real renderer (bot.adapters.wecom.render) and are printed
as the member sees them -- the card's source line, title, fields, text and buttons, or the
markdown -- and, with ``--full``, as the exact ``/cgi-bin/message/send`` request bodies.
Nothing is sent anywhere.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import TextIO
from zoneinfo import ZoneInfo

from bot.adapters.base import Delivery, RateLimits
from bot.adapters.wecom.render import card_of, render, text_of
from bot.clock import Clock
from bot.messages import Button, OutboundMessage
from bot.signing import Signer
from bot.texts import phrase

_DEMO_SIGNER = Signer(b"dutybot-demo")  # buttons carry real signed data, as in production


@dataclass
class WeComPreview:
    clock: Clock
    out: TextIO = field(default_factory=lambda: sys.stdout)
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    lang: str = "zh-CN"
    brief: bool = False
    platform: str = "wecom"
    limits: RateLimits | None = None
    count: int = 0
    agent_id: int = 1000002

    def _encode(self, button: Button) -> str:
        return _DEMO_SIGNER.encode(button)

    async def send(self, message: OutboundMessage) -> Delivery:
        self.count += 1
        card, rows = card_of(message.message)
        rendered = render(
            card,
            rows,
            encode=self._encode,
            lang=self.lang,
            task_id=lambda: f"demo{self.count:06d}",
        )
        when = self.clock.now().astimezone(self.tz).strftime("%Y-%m-%d %a %H:%M")
        header = phrase("demo", "message_header", self.lang, to=message.chat_id, when=when)
        lines = [header]
        for body in rendered.bodies:
            shown = [line for line in text_of(body).splitlines() if line.strip()]
            if self.brief:
                shown = shown[:2] + [line for line in shown[2:] if line.startswith("[")]
            lines += [f"  │ {line}" for line in shown]
            if not self.brief:
                request = {"touser": message.chat_id, "agentid": self.agent_id, **body}
                dumped = json.dumps(request, ensure_ascii=False, indent=2)
                lines += [f"  ┊ {line}" for line in dumped.splitlines()]
        self.out.write("\n".join(lines) + ("\n" if self.brief else "\n\n"))
        return Delivery(message_ref=(rendered.task_ids or [f"demo-{self.count}"])[-1])


def preview(*, clock: Clock, out: TextIO, tz: ZoneInfo, lang: str, brief: bool) -> WeComPreview:
    """The demo's entry point (bot.demo)."""
    return WeComPreview(clock, out=out, tz=tz, lang=lang, brief=brief)
