"""What a WeCom member sees: template cards with buttons, markdown where a card does not fit.

Message types and their limits, from 发送应用消息
(https://developer.work.weixin.qq.com/document/path/90236) and the card fields' documented
advice (按钮交互型 ``button_interaction``):

- ``main_title.title`` ≤ 36 characters and ``desc`` ≤ 44, ``sub_title_text`` ≤ 160,
  ``horizontal_content_list`` ≤ 6 rows (``keyname`` ≤ 5 characters, ``value`` ≤ 30),
  ``button_list`` ≤ 6 buttons (``text`` ≤ 10 characters, ``key`` ≤ 1,024 bytes, unique in the
  card, sent back as the click event's EventKey), ``task_id`` unique per app, ≤ 128 bytes of
  ``[0-9a-zA-Z_\\-@]``.
- ``markdown.content`` and ``text.content`` ≤ 2,048 bytes (UTF-8): longer text is sent in parts.

A message whose text is longer than a card holds goes as markdown (all of it), followed by a
card that carries its buttons.  The buttons carry the same signed data as Telegram's
(bot.signing): the click event hands it back and the conversation verifies it.

The neutral message (bot.messages.Message) gives header, title, fields and body; a field that
is too long for a card row, or a bundle of items, makes the message markdown.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from bot.messages import Button, Line, Message, Rows, fit_actions, layout, plain_text
from bot.texts import phrase

TITLE_LIMIT, TITLE_DESC_LIMIT, SUB_TITLE_LIMIT = 36, 44, 160
FIELDS_LIMIT, KEYNAME_LIMIT, VALUE_LIMIT = 6, 5, 30
BUTTONS_LIMIT, BUTTON_TEXT_LIMIT, BUTTON_KEY_BYTES = 6, 10, 1024
CONTENT_BYTES = 2048  # markdown and text messages
TASK_ID_BYTES = 128

# 🔴 red in a card's source line; WeCom offers 0 grey, 1 black, 2 red, 3 green
_SOURCE_COLOR = {"red": 2, "yellow": 1, "blue": 0}


@dataclass(frozen=True)
class Card:
    """A message's parts as a card shows them (the renderer's input, whatever the source)."""

    header: str = ""  # 🔵 提醒｜清单
    title: str = ""  # 4. 党组专题研究…
    fields: tuple[tuple[str, str], ...] = ()  # (完成时限, 2022-06-10)
    body: tuple[str, ...] = ()
    level: str | None = None
    markdown: str = ""  # the whole message as WeCom markdown
    plain: str = ""  # the whole message as plain text


@dataclass
class Rendered:
    """The request bodies of one message (without touser/agentid), in sending order."""

    bodies: list[dict[str, Any]] = field(default_factory=list)
    task_ids: list[str] = field(default_factory=list)


def new_task_id() -> str:
    """Unique per app (WeCom refuses a task_id used before: errcode 42014)."""
    return "db" + secrets.token_hex(12)


# ---- from the neutral message -----------------------------------------------------------------

MAX_CARDS = 4  # a message's buttons go on at most this many cards of six


def _markdown(line: Line) -> str:
    """WeCom markdown: header and title bold, the rest as it is (WeCom's markdown has no
    escape; the characters it reads as markup are rare in these texts and harmless)."""
    if line.role in ("header", "title") and line.text:
        return f"**{line.text}**"
    if line.role in ("item_field", "item_body", "hint"):
        return f"> {line.text}"
    return line.text


def card_of(message: Message) -> tuple[Card, Rows]:
    """The parts of a neutral message as a card shows them, and the buttons that fit."""
    rows, no_room = fit_actions(
        message, max_buttons=BUTTONS_LIMIT * MAX_CARDS, max_per_row=BUTTONS_LIMIT
    )
    lines = layout(message, no_room=no_room)
    fields = tuple((f.label, f.value) for f in message.fields)
    body = [line.text for line in lines if line.role not in ("header", "title", "field")]
    while body and not body[0]:
        body.pop(0)
    card = Card(
        header=message.header,
        title=message.title or (message.header if not message.items else ""),
        fields=fields,
        body=tuple(text for text in body if text),
        level=message.level,
        markdown="\n".join(_markdown(line) for line in lines).strip(),
        plain=plain_text(message, no_room=no_room),
    )
    return card, rows


# ---- to request bodies ---------------------------------------------------------------------------


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def split_bytes(text: str, limit: int = CONTENT_BYTES) -> list[str]:
    """Parts of at most ``limit`` UTF-8 bytes, cut at line ends (inside a line when one line
    alone is longer, never inside a character)."""
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate.encode()) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
        while len(line.encode()) > limit:
            cut = len(line.encode()[:limit].decode("utf-8", errors="ignore"))
            parts.append(line[:cut])
            line = line[cut:]
        current = line
    if current.strip():
        parts.append(current)
    return parts or [text[:1] or " "]


def fitted(card: Card) -> Card:
    """A title too long for the card's title line is repeated whole in its text."""
    if len(card.title) <= TITLE_LIMIT:
        return card
    return replace(card, body=(card.title, *card.body))


def fits(card: Card, buttons: list[Button]) -> bool:
    """Does the whole message fit one card (at most six buttons; nothing lost but the end of
    the header line -- the list's name -- which the card shows clipped)?"""
    return (
        len("\n".join(card.body)) <= SUB_TITLE_LIMIT
        and all(len(k) <= KEYNAME_LIMIT and len(v) <= VALUE_LIMIT for k, v in card.fields)
        and len(buttons) <= BUTTONS_LIMIT
    )


def _card_body(
    card: Card,
    buttons: list[Button],
    encode: Callable[[Button], str],
    task_id: str,
    *,
    brief: str | None = None,
) -> dict[str, Any]:
    keys: list[dict[str, Any]] = []
    seen: set[str] = set()
    for button in buttons:
        key = encode(button)
        if key in seen or len(key.encode()) > BUTTON_KEY_BYTES:
            continue
        seen.add(key)
        style = 1 if button.action in ("done", "approve", "done_now", "import_ok") else 2
        keys.append(
            {"type": 0, "text": clip(button.label, BUTTON_TEXT_LIMIT), "style": style, "key": key}
        )
    template: dict[str, Any] = {
        "card_type": "button_interaction",
        "main_title": {"title": clip(card.title or card.header, TITLE_LIMIT)},
        "task_id": task_id,
        "button_list": keys,
    }
    if card.header:
        template["main_title"]["desc"] = clip(card.header, TITLE_DESC_LIMIT)
    if card.level:
        template["source"] = {
            "desc": clip(card.header.split("｜")[0], 20),
            "desc_color": _SOURCE_COLOR.get(card.level, 0),
        }
    sub_title = brief if brief is not None else "\n".join(card.body)
    if sub_title:
        template["sub_title_text"] = clip(sub_title, SUB_TITLE_LIMIT)
    if brief is None and card.fields:
        template["horizontal_content_list"] = [
            {"keyname": clip(k, KEYNAME_LIMIT), "value": clip(v, VALUE_LIMIT)}
            for k, v in card.fields[:FIELDS_LIMIT]
        ]
    return {"msgtype": "template_card", "template_card": template}


def render(
    card: Card,
    rows: tuple[tuple[Button, ...], ...],
    *,
    encode: Callable[[Button], str],
    lang: str,
    task_id: Callable[[], str] = new_task_id,
) -> Rendered:
    """A card when the message fits one; else markdown (in parts) and cards for the buttons."""
    buttons = [b for row in rows for b in row]
    out = Rendered()
    if buttons and fits(fitted(card), buttons):
        card = fitted(card)
        tid = task_id()
        out.bodies.append(_card_body(card, buttons, encode, tid))
        out.task_ids.append(tid)
        return out
    for part in split_bytes(card.markdown or card.plain):
        out.bodies.append({"msgtype": "markdown", "markdown": {"content": part}})
    groups = [buttons[i : i + BUTTONS_LIMIT] for i in range(0, len(buttons), BUTTONS_LIMIT)]
    for number, group in enumerate(groups, start=1):
        tid = task_id()
        brief = phrase("wecom", "choose", lang, part=number, parts=len(groups))
        out.bodies.append(_card_body(card, group, encode, tid, brief=brief))
        out.task_ids.append(tid)
    return out


def text_of(body: dict[str, Any]) -> str:
    """What a request body shows, as plain text (the demo, tests, logs without secrets)."""
    kind = body.get("msgtype")
    if kind == "template_card":
        card = body["template_card"]
        lines = [
            card.get("source", {}).get("desc", ""),
            card["main_title"].get("title", ""),
            card["main_title"].get("desc", ""),
            *(f"{f['keyname']}：{f['value']}" for f in card.get("horizontal_content_list", [])),
            card.get("sub_title_text", ""),
            "  ".join(f"[{b['text']}]" for b in card.get("button_list", [])),
        ]
        return "\n".join(line for line in lines if line)
    if kind in ("markdown", "text"):
        return str(body[kind]["content"])
    if kind == "file":
        return f"[file {body['file']['media_id']}]"
    return str(body)
