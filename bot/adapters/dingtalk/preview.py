"""``dutybot demo --platform dingtalk``: each message printed as DingTalk would show it.

The demo's messages go through the real renderer (bot.adapters.dingtalk.render) and are
printed as the official sees them -- the card's markdown and its buttons -- and, with
``--full``, as the exact ``msgKey`` / ``msgParam`` of ``oToMessages/batchSend``.
Nothing is sent anywhere.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from typing import TextIO
from zoneinfo import ZoneInfo

from bot.adapters.base import Delivery, RateLimits
from bot.adapters.dingtalk.render import robot_message
from bot.clock import Clock
from bot.messages import Button, OutboundMessage
from bot.signing import Signer
from bot.texts import phrase

_MARKS = re.compile(r"^#{1,6} |\*\*")
_DEMO_SIGNER = Signer(b"dutybot-demo")  # buttons carry real signed data, as in production


@dataclass
class DingTalkPreview:
    clock: Clock
    out: TextIO = field(default_factory=lambda: sys.stdout)
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    lang: str = "zh-CN"
    brief: bool = False
    platform: str = "dingtalk"
    limits: RateLimits | None = None
    count: int = 0

    def _encode(self, button: Button) -> str:
        return _DEMO_SIGNER.encode(button)

    async def send(self, message: OutboundMessage) -> Delivery:
        self.count += 1
        sent_at = self.clock.now().astimezone(self.tz).strftime("%Y-%m-%d %H:%M")
        key, param = robot_message(message.message, encode=self._encode, sent_at=sent_at)
        when = self.clock.now().astimezone(self.tz).strftime("%Y-%m-%d %a %H:%M")
        lines = [phrase("demo", "message_header", self.lang, to=message.chat_id, when=when)]
        shown = [_as_shown(line) for line in param["text"].splitlines() if line.strip()]
        buttons = [
            param[k] for k in sorted(param) if k.startswith("actionTitle") or k == "singleTitle"
        ]
        if self.brief:
            shown = shown[:2]
        lines += [f"  │ {line}" for line in shown]
        if buttons:
            lines.append("  │ " + " ".join(f"[{label}]" for label in buttons))
        if not self.brief:
            dumped = json.dumps({"msgKey": key, "msgParam": param}, ensure_ascii=False, indent=2)
            lines += [f"  ┊ {line}" for line in dumped.splitlines()]
        self.out.write("\n".join(lines) + ("\n" if self.brief else "\n\n"))
        return Delivery(message_ref=f"demo-{self.count}")


def _as_shown(line: str) -> str:
    """A markdown line as the client shows it: headings and bold without their marks."""
    return _MARKS.sub("", line).rstrip()


def preview(*, clock: Clock, out: TextIO, tz: ZoneInfo, lang: str, brief: bool) -> DingTalkPreview:
    """The demo's entry point (bot.demo)."""
    return DingTalkPreview(clock, out=out, tz=tz, lang=lang, brief=brief)
