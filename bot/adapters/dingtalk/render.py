"""A neutral :class:`~bot.messages.Message` as a DingTalk robot message: markdown, and up to
five buttons as an action card.

Message types of the robot's 1:1 messages (``msgKey`` / ``msgParam``, the page 企业机器人发送
消息的消息类型 linked from
https://help.dingtalk.io/zh/open/development/chatbots-send-one-on-one-chat-messages-in-batches;
that page itself was not at hand, the names below agree with several public clients):
``sampleMarkdown {title, text}``, ``sampleActionCard {title, text, singleTitle, singleURL}``
and ``sampleActionCard2`` … ``sampleActionCard5`` (2–5 vertical buttons, ``actionTitleN`` /
``actionURLN``).  DingTalk's buttons are links; a ``dtmd://dingtalkclient/sendMessage?content=``
link makes the client send that text in the chat as the person's own message, which reaches
the robot through Stream like anything they type.  So a button sends ``<label> #<signed
data>``: the same HMAC-signed data as a Telegram button, verified by the conversation.

Escaping happens here and nowhere else.  Rather than backslash escapes (whose support in
DingTalk's markdown is not documented), the few characters that are markup -- ``* _ ` [ ]
< > # |`` and a leading ``-``/``+``/digit-dot -- are replaced by their full-width forms, which
read the same in Chinese text.

Each message ends with the time it was sent (``发送于 …``): work notifications drop a message
identical to one sent the same day ("给同一用户发相同内容消息一天仅允许一次", and at most 500
a day per user for an internal app: https://developer.alibaba.com/docs/api.htm?apiId=37024),
and whether robot messages are filtered alike is not documented: a reminder repeated on
another day never looks identical to the first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from bot.messages import Button, Message, fit_actions, layout
from bot.texts import phrase

DTMD_SEND = "dtmd://dingtalkclient/sendMessage?content="
MAX_BUTTONS = 5  # sampleActionCard5 is the largest action card
TEXT_LIMIT = 5000  # characters of markdown we send (msgParam is capped at 15,000 bytes)
TITLE_LIMIT = 60  # the notification preview shows the title alone
_BOLD = frozenset({"header", "title"})
_MARKUP = str.maketrans(
    {
        "*": "＊",
        "_": "＿",
        "`": "｀",
        "[": "［",
        "]": "］",
        "<": "＜",
        ">": "＞",
        "#": "＃",
        "|": "｜",
        "\\": "＼",
    }
)
_LIST_START = re.compile(r"^(\s*)([-+]|\d+\.)(\s)")


def escape(text: str) -> str:
    """Plain text that DingTalk's markdown shows as it is."""
    escaped = text.translate(_MARKUP)
    return _LIST_START.sub(lambda m: m.group(1) + _full_width(m.group(2)) + m.group(3), escaped)


def _full_width(mark: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in mark)


def markdown(message: Message, *, sent_at: str | None = None) -> tuple[str, tuple[Button, ...]]:
    """The markdown text and the buttons (at most five, one per line of the card)."""
    rows, no_room = fit_actions(message, max_buttons=MAX_BUTTONS, max_per_row=1)
    cards = any(item.fields or item.body for item in message.items)
    out: list[str] = []
    for line in layout(message, no_room=no_room):
        if line.role == "blank":
            out.append("")
            continue
        text = escape(line.text)
        if line.role == "header":
            text = f"#### {text}"
        elif line.role in _BOLD or (cards and line.role == "item"):
            text = f"**{text}**"
        elif line.role in ("item_field", "item_body"):
            text = f"　{text}"  # an ideographic space: indented under its item
        out.append(text)
    if message.document is not None:
        name = escape(message.document.file_name)
        out += ["", escape(phrase("dingtalk", "no_file", message.lang, name=name))]
    if sent_at:
        out += ["", escape(phrase("dingtalk", "sent_at", message.lang, when=sent_at))]
    # a markdown line break is two spaces and a newline; a blank line separates paragraphs
    text = "  \n".join(out).replace("  \n  \n", "\n\n")
    if len(text) > TEXT_LIMIT:
        text = text[: TEXT_LIMIT - 1] + "…"
    return text, tuple(button for row in rows for button in row)


def robot_message(
    message: Message, *, encode: Callable[[Button], str], sent_at: str | None = None
) -> tuple[str, dict[str, Any]]:
    """``(msgKey, msgParam)`` for ``oToMessages/batchSend``."""
    text, buttons = markdown(message, sent_at=sent_at)
    title = (message.header or message.title or phrase("dingtalk", "title", message.lang))[
        :TITLE_LIMIT
    ]
    if not buttons:
        return "sampleMarkdown", {"title": title, "text": text}
    links = [(b.label, DTMD_SEND + quote(f"{b.label} #{encode(b)}", safe="")) for b in buttons]
    if len(links) == 1:
        label, url = links[0]
        return "sampleActionCard", {
            "title": title,
            "text": text,
            "singleTitle": label,
            "singleURL": url,
        }
    param: dict[str, Any] = {"title": title, "text": text}
    for n, (label, url) in enumerate(links, start=1):
        param[f"actionTitle{n}"], param[f"actionURL{n}"] = label, url
    return f"sampleActionCard{len(links)}", param
