"""Every message template, in both languages, with each optional field present and absent:
the parts come out as clean lines (issue 12.1: "…已逾期 35 个工作日责任人：…" was two lines run
together), and each renderer draws them -- Telegram HTML the Bot API accepts, plain console
text -- with user data shown as typed."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.adapters.console import render_console
from bot.adapters.telegram import render_html
from bot.messages import FIELDS, ITEM_FIELDS, Message, compose, layout, plain_text, reply
from bot.texts import LANGS, message_kinds, phrase, templates_dir
from tests.fakes.botapi import parse_html

TITLE = '党组专题研究<落实>“十五条硬措施” & "督办"'  # markup in user data must survive as text
FULL: dict[str, Any] = {  # every optional value present
    "platform": "dingtalk",
    "binding_id": 7,
    "bound_at": "2022-06-07 09:00",
    "at": "2022-06-07 09:05",
    "schedule": "测试县<安全>清单",
    "ref": "4",
    "title": TITLE,
    "occurrence_kind": "deadline",
    "due_date": "2022-06-10",
    "original_due": "2022-06-03",
    "period_start": "2022-05-01",
    "times_done": 1,
    "times_required": 2,
    "overdue_days": 35,
    "assignees": ["张敏", "李强"],
    "lead": ["熊伟"],
    "units": ["能源科"],
    "evidence": "required",
    "level": "yellow",
    "offset": -2,
    "repeat": 1,
    "targets": ["lead"],
    "occurrence_id": 12,
    "open_periods": 3,
    "by": "张敏",
    "note": "纪要<已>归档",
    "evidence_count": 2,
    "completed_on": "2022-06-09",
    "requested_date": "2022-06-17",
    "approved": True,
    "reply_id": 7,
    "person": "王五",
    "reason": "Forbidden: bot was blocked by the user",
}
SPARSE: dict[str, Any] = {  # every optional value absent
    "person": "王五",
    "platform": "telegram",
    "binding_id": 8,
    "bound_at": "2022-06-07 09:00",
    "at": "2022-06-07 09:05",
    **FULL,
    "occurrence_kind": "period",
    "original_due": None,
    "times_done": 0,
    "times_required": 1,
    "overdue_days": 0,
    "assignees": [],
    "lead": [],
    "units": [],
    "evidence": "optional",
    "level": "blue",
    "offset": None,
    "repeat": 0,
    "open_periods": 1,
    "note": None,
    "evidence_count": 0,
    "approved": False,
    "reply_id": None,
    "reason": "",
}
NOTIFICATIONS = (
    "reminder", "progress", "escalation", "nudge", "extension_request", "extension_decision",
    "not_mine", "partner_info", "completed", "admin_alert", "binding_added", "binding_notice",
    "binding_removed",
)  # fmt: skip
ABOUT_PEOPLE = ("admin_alert", "binding_added", "binding_notice", "binding_removed")
# fields a kind shows even when every optional value is absent
ALWAYS = {"due", "requested"}
ALWAYS_FOR = {"extension_request": {"note"}}  # "（未填写）": the lead must see it was left out

VIEW = {k: FULL[k] for k in ("ref", "title", "occurrence_kind", "due_date", "original_due")}
VIEW |= {"id": 12, "times_done": 1, "times_required": 2, "overdue_days": 2, "status": "open"}
VIEW |= {"evidence": "required", "level": "red"}
BARE = {**VIEW, "original_due": None, "times_required": 1, "overdue_days": 0, "level": "blue"}
CHATS: dict[str, list[dict[str, Any]]] = {
    "chat_unknown": [{}],
    "chat_error": [{}],
    "chat_cancelled": [{}],
    "chat_import_ask": [{}],
    "chat_import_cancelled": [{}],
    "chat_done_usage": [{}],
    "chat_invite_usage": [{}],
    "chat_refusal": [{"code": "not_assigned"}, {"code": "evidence_required"}],
    "chat_invite_refused": [
        {"code": c} for c in ("invalid", "expired", "used", "inactive", "throttled")
    ],
    "chat_welcome": [
        {"person": "张敏", "title": t, "schedule": "清单<一>", "roles": r, "open_count": n}
        for t, r, n in (("", ["official"], 0), ("科长", ["admin", "leader", "official"], 3))
    ],
    "chat_help": [{"roles": ["official"]}, {"roles": ["admin", "leader", "official"]}],
    "chat_not_understood": [{"roles": ["official"]}],
    "chat_import_waiting": [{"step": "await_file"}, {"step": "await_confirm"}],
    "chat_import_unreadable": [{"name": "a<b>.yaml"}],
    "chat_import_errors": [
        {"name": "x.yaml", "count": 2, "problems": ["x.yaml:1:2: 未知 <人员>"], "more": m}
        for m in (0, 3)
    ],
    "chat_import_preview": [
        {"diff_text": "修改任务 4：title\n新增任务 5", "warnings": w} for w in ([], ["w <1>"])
    ],
    "chat_import_applied": [{"diff_text": "已更新 <清单>"}],
    "chat_import_unchanged": [{"diff_text": "清单 <e2e> 无变化"}],
    "chat_tasks": [
        {"items": [VIEW, BARE], "more": m, "overdue": o, "today": "2022-06-14"}
        for o in (True, False)
        for m in (0, 2)
    ]
    + [{"items": [], "more": 0, "overdue": o, "today": "2022-06-14"} for o in (True, False)],
    "chat_lang": [{}],
    "chat_lang_set": [{}],
    "chat_digest_empty": [{"p": {**FULL, "date": "2022-06-14"}}],
    "chat_invite_unknown": [{"name": "王<五>"}],
    "chat_invite_link": [{"name": "张敏", "link": "https://t.me/b?start=a_b", "expires": "x"}],
    "chat_web_link": [{"url": "https://duty.example.cn/login/abc", "minutes": 15}],
    "chat_report_caption": [{"tasks": 3}],
    "chat_ask_evidence": [{"p": p, "required": r} for p in (VIEW, BARE) for r in (True, False)],
    "chat_ask_progress": [{"p": VIEW}],
    "chat_ask_date": [
        {"p": VIEW, "error": None},
        {"p": BARE, "error": "unparsed"},
        {"p": VIEW, "error": "not_later", "given": "2022-06-09"},
    ],
    "chat_ask_reason": [{"p": VIEW, "requested_date": "2022-06-17"}],
    "chat_extension_sent": [
        {"p": p, "requested_date": "2022-06-17", "note": n}
        for p, n in ((VIEW, "设备<未>到货"), (BARE, None))
    ],
    "chat_extension_decided": [
        {"p": VIEW, "approved": a, "asker": "张敏", "requested": "2022-06-17"}
        for a in (True, False)
    ],
    "chat_not_mine_sent": [{"p": VIEW}],
    "chat_nudged": [{"p": VIEW, "count": 2}],
    "chat_unbound": [{"person": "王<五>", "platform": p} for p in ("dingtalk", "other")],
    "chat_choose": [{"p": VIEW}, {"p": BARE}],
    "chat_done": [
        {"p": {**VIEW, "status": s}, "note": n, "evidence_count": e, "finished": s == "done"}
        for s, n, e in (("done", "纪要<已>归档", 2), ("open", None, 0))
    ],
    "chat_progress_saved": [
        {"p": {**VIEW, "status": s}, "percent": pc} for s, pc in (("open", 60), ("done", None))
    ],
}
TYPED = ("<落实>", "<人员>", "<未>", "<已>", "a<b>.yaml", "王<五>", "<安全>", "<清单>", "<e2e>",
         "<一>", "<1>")  # fmt: skip
_MARKUP = re.compile(r"</?[a-z]+>|&(amp|lt|gt|quot);|\{\{|\}\}|\{%|%\}|Undefined|\bNone\b")


def labels(lang: str) -> set[str]:
    """Every field label, to find two fields run together on one line."""
    found = set()
    for kind in FIELDS:
        for values in (FULL, SPARSE, {**FULL, "occurrence_kind": "period"}):
            message = (
                compose(kind, [values], person="王五", lang=lang) if kind in NOTIFICATIONS else None
            )
            found |= {f.label for f in (message.fields if message else ())}
    return found | {"责任人", "牵头单位", "牵头领导", "Responsible", "Units", "Lead"}


def untyped(line: str) -> str:
    """A line without what people typed: that may look like markup, templates may not."""
    for typed in TYPED:
        line = line.replace(typed, "")
    return line


def check_structure(message: Message, lang: str) -> None:
    """Clean parts, in order, each line one thing."""
    for text in (message.header, message.title):
        assert "\n" not in text and text == text.strip()
    for field in message.fields + tuple(f for item in message.items for f in item.fields):
        assert field.label and field.value, field  # no empty field lines
        assert "\n" not in field.value and field.value == field.value.strip()
    for line in message.body + message.footer + tuple(b for i in message.items for b in i.body):
        assert line and line == line.strip()
    roles = [line.role for line in layout(message)]
    order = ["header", "title", "field", "body", "item", "footer"]
    ranks = [order.index(r if r in order else "item") for r in roles if r != "blank"]
    assert ranks == sorted(ranks), roles  # header, title, fields, body, items, footer
    assert roles.count("header") <= 1 and roles.count("title") <= 1
    separator = phrase("fields", "line", lang, label="", value="").strip()
    known = labels(lang)
    for line in plain_text(message).splitlines():
        assert not _MARKUP.search(untyped(line)), line  # no stray markup, no template leftovers
        # a field's "label：" only ever starts a line: anywhere else, two lines ran together
        # (issue 12.1: "…已逾期 35 个工作日责任人：…")
        inside = [label for label in known if f"{label}{separator}" in line[1:]]
        assert not inside, line
    assert plain_text(message).strip()


def check_renderers(message: Message) -> None:
    """Telegram: valid HTML whose visible text is the plain text; console: no tags at all."""
    html, _ = render_html(message)
    visible = parse_html(html)  # raises as the Bot API would on bad markup
    assert visible == plain_text(message)
    assert "&amp;lt;" not in html and "&amp;amp;" not in html  # escaped once, not twice
    console, _ = render_console(message)
    assert not any(re.search(r"</?b>|&lt;|&amp;", untyped(line)) for line in console)
    assert [line for line in plain_text(message).splitlines() if line] == console


def test_every_message_kind_is_covered_in_both_languages() -> None:
    kinds = set(message_kinds("zh-CN"))
    assert kinds == set(message_kinds("en"))
    assert kinds == set(NOTIFICATIONS) | set(CHATS) | {"digest", "bundle"}
    assert not list(templates_dir().glob("*/*.html.j2"))  # no markup left in templates


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("kind", NOTIFICATIONS)
def test_notification_with_every_field_present_and_absent(kind: str, lang: str) -> None:
    names = FIELDS.get(kind, ())
    for values, expected in (
        (FULL, len(names)),
        (SPARSE, len([n for n in names if n in ALWAYS | ALWAYS_FOR.get(kind, set())])),
    ):
        message = compose(kind, [values], person="王五", lang=lang)
        check_structure(message, lang)
        check_renderers(message)
        assert len(message.fields) == expected, (values is FULL, message.fields)
        assert message.header and (message.title or kind in ABOUT_PEOPLE)
        if kind not in ABOUT_PEOPLE:
            assert TITLE in message.title  # user data as typed: no escaping in the model
    person = "张敏"  # an assignee: the buttons to answer
    assert compose("reminder", [FULL], person=person, lang=lang).actions


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("kind", NOTIFICATIONS)
def test_bundles_of_every_kind(kind: str, lang: str) -> None:
    second = {**SPARSE, "ref": "50.1", "occurrence_id": 13, "assignees": ["张敏"]}
    message = compose(kind, [second, FULL], person="张敏", lang=lang)
    check_structure(message, lang)
    check_renderers(message)
    assert message.header and len(message.items) == 2
    if kind not in ABOUT_PEOPLE:  # their items are people, not tasks
        assert [item.title.split(". ")[0] for item in message.items] == ["4", "50.1"]
    names = ITEM_FIELDS.get(kind)
    if names is not None:
        assert len(message.items[0].fields) == len(names)  # every field of the full one


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("kind", sorted(CHATS))
def test_chat_replies(kind: str, lang: str) -> None:
    for context in CHATS[kind]:
        message = reply(kind, context, lang=lang)
        check_structure(message, lang)
        check_renderers(message)
        text = plain_text(message)
        shown = {k: v for k, v in context.items() if k != "p"}
        for typed in TYPED:
            if typed in str(shown) or (message.title and typed in str(context.get("p"))):
                assert typed in text  # shown as typed; the renderer escapes it


@pytest.mark.parametrize("lang", LANGS)
def test_digest_full_and_empty_sections(lang: str) -> None:
    row = {**FULL, "task_id": 1, "unit": "能源科", "status": "open", "periods": 3, "level": "red"}
    payload = {"schedule": "清单", "date": "2022-06-14", "whole": True, "overdue_count": 1}
    weekly = [{"unit": "甲", "done": 1, "total": 2, "rate": 50}, {"unit": "乙", "done": 2,
              "total": 2, "rate": 100}]  # fmt: skip
    for content in (
        {"overdue": {"能源科": [row]}, "due_soon": [row], "completed": [row], "weekly": weekly},
        {"overdue": {}, "due_soon": [row], "completed": [], "weekly": []},
        {"overdue": {}, "due_soon": [], "completed": [row], "weekly": []},
    ):
        message = compose("digest", [{**payload, **content}], person="王五", lang=lang)
        check_structure(message, lang)
        check_renderers(message)


@pytest.mark.parametrize("lang", LANGS)
def test_catalogues(lang: str) -> None:
    for code in (
        "unknown_chat", "bad_button", "not_found", "not_assigned", "closed", "evidence_required",
        "bad_percent", "extension_not_later", "not_lead", "not_leader", "not_admin",
        "no_invite_link", "import_other_schedule", "no_import",
    ):  # fmt: skip
        assert len(phrase("chat_refusals", code, lang)) <= 200  # a callback answer's limit
    for name in ("start", "help", "tasks", "overdue", "done", "digest", "lang", "cancel",
                 "import", "invite", "report"):  # fmt: skip
        assert 3 <= len(phrase("chat_commands", name, lang)) <= 256
    for toast in ("go_on", "saved", "sent", "done", "cancelled", "failed"):
        assert phrase("chat_toasts", toast, lang)
