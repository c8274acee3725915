"""Messages as data: what the bot says, decided here, drawn by each chat adapter its own way.

A :class:`Message` is plain text in parts -- a header, a task title, labelled fields, body
lines, items (one per task in a bundle or a list), rows of buttons, maybe a file.  Nothing in
this module imports a chat library or writes markup, and nothing here is escaped: each adapter
renders a Message (Telegram HTML, DingTalk markdown, WeCom cards, the console's plain text)
and escapes there, once.  :func:`layout` and :func:`fit_actions` are the pieces every renderer
shares; :func:`plain_text` is the simplest renderer built on them.

Wording lives in ``message_templates/<lang>/<kind>.msg.j2`` (see :mod:`bot.texts`); which
fields a kind shows is the table :data:`FIELDS` below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bot import digest as digests
from bot.store.models import Notification
from bot.texts import MessageTemplate, field, language, message_template, phrase

__all__ = [
    "ANSWERABLE",
    "ASSIGNEE_ACTIONS",
    "FIELDS",
    "ITEM_FIELDS",
    "Button",
    "Document",
    "Field",
    "Item",
    "Line",
    "Message",
    "OutboundMessage",
    "button",
    "compose",
    "field_line",
    "fit_actions",
    "layout",
    "plain_text",
    "reply",
    "row_payload",
]

Rows = tuple[tuple["Button", ...], ...]


@dataclass(frozen=True)
class Button:
    """One button; ``action`` and ``ref`` are signed by the adapter when it encodes them."""

    label: str
    action: str  # done | progress | extend | not_mine | nudge | approve | deny | ...
    ref: int  # the occurrence (or reply, for approvals) the button acts on


@dataclass(frozen=True)
class Field:
    """A labelled value: 完成时限 2022-06-10.  Kinds omit fields whose value is empty."""

    label: str
    value: str


@dataclass(frozen=True)
class Item:
    """One entry of a bundle or a list (one task).  ``hint`` says how to answer by command,
    for a platform that cannot show this item's ``actions`` (too many buttons)."""

    title: str
    level: str | None = None  # blue | yellow | red
    fields: tuple[Field, ...] = ()
    body: tuple[str, ...] = ()
    actions: tuple[Button, ...] = ()
    hint: str | None = None


@dataclass(frozen=True)
class Document:
    """A file sent with a message (the /report ledger); the message's text is its caption."""

    file_name: str
    content: bytes


@dataclass(frozen=True)
class Message:
    """Everything the recipient should see, as plain (unescaped) text."""

    kind: str  # the template kind: reminder, escalation, digest, chat_done, ...
    lang: str
    level: str | None = None  # 三色督办: blue | yellow | red
    header: str = ""  # 🔵 提醒｜清单
    title: str = ""  # 4. 党组专题研究…
    fields: tuple[Field, ...] = ()
    body: tuple[str, ...] = ()
    items: tuple[Item, ...] = ()
    footer: tuple[str, ...] = ()  # after the items: 另有 N 项…
    actions: Rows = ()  # rows of buttons about the message as a whole
    document: Document | None = None


@dataclass(frozen=True)
class OutboundMessage:
    """A message addressed to one chat of one platform."""

    chat_id: str
    message: Message


# ---- what each kind shows ---------------------------------------------------------------------

# Fields per kind, in order (their wording: message_templates/<lang>/fields.j2).
FIELDS: dict[str, tuple[str, ...]] = {
    "reminder": ("due", "left", "overdue", "times", "lead", "units"),
    "progress": ("due", "lead"),
    "escalation": (
        "due",
        "overdue",
        "repeat",
        "times",
        "open_periods",
        "assignees",
        "units",
        "lead",
    ),
    "nudge": ("due", "overdue", "times"),
    "extension_request": ("due", "requested", "note"),
    "extension_decision": ("due",),
    "not_mine": ("note",),
    "partner_info": ("due", "units", "lead"),
    "completed": ("times", "note", "evidence"),
    "admin_alert": ("problem",),
    "chat_choose": ("due", "times"),
    "chat_ask_date": ("due",),
    "chat_ask_reason": ("requested",),
    "chat_extension_sent": ("due", "requested", "note"),
    "chat_done": ("note", "evidence"),
    "chat_progress_saved": ("due",),
}
# Fields of one item in a bundle (kept short: a bundle lists many).
ITEM_FIELDS: dict[str, tuple[str, ...]] = {
    "reminder": ("due", "left", "overdue", "times"),
    "escalation": ("due", "overdue", "assignees"),
}
# Outbox kinds about one occurrence that its recipient can answer (buttons, quoting it).
ANSWERABLE = ("reminder", "escalation", "progress", "nudge")
ASSIGNEE_ACTIONS = (("done", "progress"), ("extend", "not_mine"))
MAX_DIGEST_BUTTONS = 5
# Items a bundle lists (the most overdue first); the rest are counted in its footer.  A
# catch-up after an outage may put thousands of items in one leader's message: listed in
# full it would leave as 150 Telegram messages, not one.
MAX_BUNDLE_ITEMS = 15
_SEVERITY = {"red": 3, "yellow": 2, "blue": 1}


def button(action: str, ref: int, lang: str, /, **context: Any) -> Button:
    """A button labelled from message_templates/<lang>/buttons.j2 (``ref=`` a task number
    gives the short label used in bundles: "✅ 4")."""
    return Button(phrase("buttons", action, lang, **context), action, ref)


def row_payload(row: Notification) -> dict[str, Any]:
    """An outbox row as :func:`compose` takes it: its payload, plus the occurrence its
    buttons act on and its level when the payload does not carry them."""
    payload = dict(row.payload or {})
    payload.setdefault("occurrence_id", row.occurrence_id)
    payload.setdefault("level", row.level)
    return payload


# ---- composing -----------------------------------------------------------------------------------


def compose(kind: str, payloads: Sequence[Mapping[str, Any]], *, person: str, lang: str) -> Message:
    """The message of one notification, or of several of one kind bundled for one person.

    ``person`` is the recipient's name.  One payload gives the single card; several give a
    bundle -- a header ("您有 5 项待办"), one :class:`Item` per payload with its own buttons.
    Kinds whose template has no bundle blocks fall back to ``bundle.msg.j2``.
    """
    if not payloads:
        raise ValueError("compose needs at least one payload")
    lang = language(lang)
    if kind == "digest" and len(payloads) == 1:
        return _digest(payloads[0], person=person, lang=lang)
    if len(payloads) == 1:
        p = payloads[0]
        return _card(
            kind,
            lang,
            {"p": p, "person": person, "level": p.get("level")},
            actions=_actions(kind, p, person, lang, compact=False),
        )
    ordered = sorted(payloads, key=_bundle_order)
    template = message_template(kind, lang)
    if not template.has("bundle_header"):
        return _generic_bundle(kind, ordered, person=person, lang=lang)
    level = _highest(p.get("level") for p in ordered)
    shown = ordered[:MAX_BUNDLE_ITEMS]
    context = {
        "items": shown,
        "count": len(ordered),
        "more": len(ordered) - len(shown),
        "mine": sum(person in p.get("assignees", ()) for p in ordered),
        "overdue": sum(bool(p.get("overdue_days")) for p in ordered),
        "schedule": ordered[0].get("schedule", ""),
        "person": person,
        "level": level,
    }
    items = tuple(
        _item(
            kind,
            template,
            lang,
            {"p": p, "person": person, "level": p.get("level")},
            actions=_flat(_actions(kind, p, person, lang, compact=True)),
        )
        for p in shown
    )
    return Message(
        kind=kind,
        lang=lang,
        level=level,
        header=template.text("bundle_header", **context),
        body=template.lines("bundle_body", **context),
        items=items,
        footer=template.lines("bundle_footer", **context),
    )


def reply(
    kind: str,
    context: Mapping[str, Any],
    *,
    lang: str,
    actions: Rows = (),
    document: Document | None = None,
) -> Message:
    """A conversation reply of ``kind`` (a ``chat_*`` template) with its context.

    A reply that is a notification kind (/digest on demand) carries ``payloads`` and
    ``person`` and is composed like the notification itself.
    """
    if "payloads" in context:
        return compose(kind, context["payloads"], person=context["person"], lang=lang)
    lang = language(lang)
    message = _card(kind, lang, dict(context), actions=actions)
    template = message_template(kind, lang)
    if "items" in context and template.has("item_title"):
        items = tuple(
            _item(kind, template, lang, {**context, "p": row}, actions=())
            for row in context["items"]
        )
        message = replace(message, items=items)
    if document is not None:
        message = replace(message, document=document)
    return message


def _card(kind: str, lang: str, context: dict[str, Any], *, actions: Rows) -> Message:
    template = message_template(kind, lang)
    return Message(
        kind=kind,
        lang=lang,
        level=context.get("level"),
        header=template.text("header", **context),
        title=template.text("title", **context),
        fields=_fields(FIELDS.get(kind, ()), kind, lang, context),
        body=template.lines("body", **context),
        footer=template.lines("footer", **context),
        actions=actions,
    )


def _item(
    kind: str,
    template: MessageTemplate,
    lang: str,
    context: dict[str, Any],
    *,
    actions: tuple[Button, ...],
) -> Item:
    p = context["p"]
    return Item(
        title=template.text("item_title", **context),
        level=p.get("level"),
        fields=_fields(ITEM_FIELDS.get(kind, ()), kind, lang, context),
        body=template.lines("item_body", **context),
        actions=actions,
        hint=(template.text("item_hint", **context) or None) if actions else None,
    )


def _generic_bundle(
    kind: str, payloads: Sequence[Mapping[str, Any]], *, person: str, lang: str
) -> Message:
    """Several notifications of a kind without bundle wording: each card becomes an item."""
    count = len(payloads)
    payloads = payloads[:MAX_BUNDLE_ITEMS]
    cards = [compose(kind, [p], person=person, lang=lang) for p in payloads]
    bundle = message_template("bundle", lang)
    context = {
        "first": cards[0].header,
        "count": count,
        "more": count - len(cards),
        "person": person,
    }
    items = tuple(
        Item(
            title=card.title or card.header,
            level=card.level,
            fields=card.fields,
            body=card.body,
            actions=_flat(_actions(kind, p, person, lang, compact=True)),
        )
        for card, p in zip(cards, payloads, strict=True)
    )
    return Message(
        kind=kind,
        lang=lang,
        level=_highest(card.level for card in cards),
        header=bundle.text("bundle_header", **context),
        body=bundle.lines("bundle_body", **context),
        items=items,
        footer=bundle.lines("bundle_footer", **context),
    )


def _digest(payload: Mapping[str, Any], *, person: str, lang: str) -> Message:
    """督办汇总 on one phone screen: counts, the most overdue first, 另有 N 项 for the rest."""
    screen = digests.screen(payload)
    context = {"p": payload, "s": screen, "person": person, "level": None}
    template = message_template("digest", lang)
    message = _card("digest", lang, context, actions=())
    items = tuple(
        _item(
            "digest",
            template,
            lang,
            {**context, "p": row},
            actions=(button("nudge", int(row["occurrence_id"]), lang, ref=row["ref"]),)
            if index < MAX_DIGEST_BUTTONS and row.get("overdue_days")
            else (),
        )
        for index, row in enumerate(screen["shown"])
    )
    return replace(message, items=items)


def _actions(kind: str, p: Mapping[str, Any], person: str, lang: str, *, compact: bool) -> Rows:
    """The buttons of one notification: answers for the assignees, 催办 for the leaders
    of an escalation, approve/deny for an extension request."""
    occurrence = p.get("occurrence_id")
    if kind in ANSWERABLE and occurrence is not None:
        if person in p.get("assignees", ()) or kind == "nudge":
            names: tuple[tuple[str, ...], ...] = ASSIGNEE_ACTIONS
        elif kind == "escalation":
            names = (("nudge",),)
        else:
            return ()
        target = int(occurrence)
    elif kind == "extension_request" and p.get("reply_id"):
        names, target = (("approve", "deny"),), int(p["reply_id"])
    elif kind in ("binding_notice", "binding_added") and p.get("binding_id"):
        label = "unbind" if kind == "binding_notice" else "unbind_admin"  # 这不是我 / 解除绑定
        return ((Button(phrase("buttons", label, lang), "unbind", int(p["binding_id"])),),)
    else:
        return ()
    ref = str(p.get("ref", ""))
    return tuple(
        tuple(
            button(a, target, lang, ref=ref) if compact or a == "nudge" else button(a, target, lang)
            for a in row
        )
        for row in names
    )


def _fields(
    names: tuple[str, ...], kind: str, lang: str, context: Mapping[str, Any]
) -> tuple[Field, ...]:
    values = {**context.get("p", {}), **context, "kind": kind}
    found = (field(name, lang, values) for name in names)
    return tuple(Field(label, value) for label, value in found if value)


def _flat(rows: Rows) -> tuple[Button, ...]:
    return tuple(b for row in rows for b in row)


def _highest(levels: Any) -> str | None:
    known = [level for level in levels if level in _SEVERITY]
    return max(known, key=_SEVERITY.__getitem__) if known else None


def _bundle_order(p: Mapping[str, Any]) -> tuple[Any, ...]:
    """Most overdue first, then the soonest due, then by task number (7.2 before 50.1)."""
    overdue = -int(p.get("overdue_days") or 0)
    return (overdue, str(p.get("due_date", "")), digests.ref_key(str(p.get("ref", ""))))


# ---- rendering pieces every adapter shares -------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One line of a message as every text platform lays it out; ``role`` says what it is
    (header | title | field | body | item | item_field | item_body | hint | footer | blank)
    so a renderer can mark it up (bold a title, indent an item's fields)."""

    role: str
    text: str


def field_line(item: Field, lang: str) -> str:
    """``label：value`` in the message's language."""
    return phrase("fields", "line", lang, label=item.label, value=item.value)


def fit_actions(
    message: Message, *, max_buttons: int, max_per_row: int
) -> tuple[Rows, frozenset[int]]:
    """The keyboard a platform can show within its limits: each item's buttons as a row (in
    item order) while they fit, then the message's own rows; and the indexes of the items
    whose buttons did not fit (their text then says how to answer by command)."""
    rows: list[tuple[Button, ...]] = []
    budget = max_buttons - sum(len(row) for row in message.actions)
    no_room: set[int] = set()
    for index, item in enumerate(message.items):
        if not item.actions:
            continue
        if len(item.actions) > budget:
            no_room.add(index)
            continue
        budget -= len(item.actions)
        rows += _chunks(item.actions, max_per_row)
    for row in message.actions:
        rows += _chunks(row, max_per_row)
    return tuple(rows), frozenset(no_room)


def layout(message: Message, *, no_room: frozenset[int] = frozenset()) -> list[Line]:
    """The message as lines: header and title, fields, a blank line, body, the items (blank
    lines between them when they are more than one line each), the footer."""
    sections: list[list[Line]] = []
    top = [Line("header", message.header)] if message.header else []
    top += [Line("title", message.title)] if message.title else []
    top += [Line("field", field_line(f, message.lang)) for f in message.fields]
    sections.append(top)
    sections.append([Line("body", text) for text in message.body])
    blocks = [
        _item_lines(item, message.lang, index in no_room)
        for index, item in enumerate(message.items)
    ]
    if any(len(block) > 1 for block in blocks):
        sections += blocks
    else:
        sections.append([line for block in blocks for line in block])
    sections.append([Line("footer", text) for text in message.footer])
    lines: list[Line] = []
    for section in sections:
        if not section:
            continue
        if lines:
            lines.append(Line("blank", ""))
        lines += section
    return lines


def _item_lines(item: Item, lang: str, no_room: bool) -> list[Line]:
    mark = phrase("common", "mark", lang, level=item.level) if item.level else ""
    lines = [Line("item", f"{mark} {item.title}".strip())]
    lines += [Line("item_field", field_line(f, lang)) for f in item.fields]
    lines += [Line("item_body", text) for text in item.body]
    if no_room and item.hint:
        lines.append(Line("hint", item.hint))
    return lines


def plain_text(message: Message, *, no_room: frozenset[int] = frozenset()) -> str:
    """The message as plain text (a terminal, a log, a test)."""
    return "\n".join(line.text for line in layout(message, no_room=no_room))


def _chunks(buttons: tuple[Button, ...], size: int) -> list[tuple[Button, ...]]:
    return [buttons[i : i + size] for i in range(0, len(buttons), size)]
