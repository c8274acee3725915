"""Turn an outbox row into what its recipient sees: text from message_templates/, and buttons."""

from __future__ import annotations

from typing import Any

from bot.adapters.base import Button
from bot.store.models import Notification, Person
from bot.texts import phrase, render

MAX_DIGEST_BUTTONS = 5
ASSIGNEE_ACTIONS = (("done", "progress"), ("extend", "not_mine"))


def compose(
    row: Notification, person: Person, lang: str
) -> tuple[str, tuple[tuple[Button, ...], ...]]:
    payload: dict[str, Any] = row.payload or {}
    text = render(f"{row.kind}.html", lang, p=payload, person=person.name, level=row.level)
    return text, buttons(row, person, lang)


def _button(action: str, target: int, lang: str, /, **context: Any) -> Button:
    return Button(phrase("buttons", action, lang, **context), action, target)


def buttons(row: Notification, person: Person, lang: str) -> tuple[tuple[Button, ...], ...]:
    payload: dict[str, Any] = row.payload or {}
    occurrence = row.occurrence_id
    if row.kind in ("reminder", "progress", "escalation", "nudge") and occurrence is not None:
        if person.name in payload.get("assignees", []) or row.kind == "nudge":
            return tuple(
                tuple(_button(a, occurrence, lang) for a in line) for line in ASSIGNEE_ACTIONS
            )
        if row.kind == "escalation":
            return ((_button("nudge", occurrence, lang, ref=payload.get("ref", "")),),)
    if row.kind == "extension_request" and payload.get("reply_id"):
        reply = int(payload["reply_id"])
        return ((_button("approve", reply, lang), _button("deny", reply, lang)),)
    if row.kind == "digest":
        overdue = [item for items in payload.get("overdue", {}).values() for item in items]
        overdue.sort(key=lambda item: -item["overdue_days"])
        return tuple(
            (_button("nudge", int(item["occurrence_id"]), lang, ref=item["ref"]),)
            for item in overdue[:MAX_DIGEST_BUTTONS]
        )
    return ()


def compose_bundle(
    rows: list[Notification], person: Person, lang: str
) -> tuple[str, tuple[tuple[Button, ...], ...]]:
    """One message for several notifications of one bundle (interim: texts in a row)."""
    if len(rows) == 1:
        return compose(rows[0], person, lang)
    texts: list[str] = []
    keys: list[tuple[Button, ...]] = []
    for row in rows:
        text, rows_of_buttons = compose(row, person, lang)
        texts.append(text)
        keys += rows_of_buttons
    return "\n\n".join(texts), tuple(keys[:90])
