"""Every chat reply renders in both languages, as Telegram HTML that the API accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.texts import LANGS, phrase, render, templates_dir
from tests.fakes.botapi import parse_html

P: dict[str, Any] = {
    "id": 12,
    "ref": "4",
    "title": "党组专题研究<落实>“十五条硬措施”",  # markup in user data must be escaped
    "occurrence_kind": "deadline",
    "due_date": "2022-06-10",
    "original_due": None,
    "times_done": 1,
    "times_required": 2,
    "overdue_days": 2,
    "evidence": "required",
    "status": "open",
    "schedule": "测试县清单",
    "date": "2022-06-14",
}
CONTEXTS: dict[str, list[dict[str, Any]]] = {
    "chat_unknown": [{}],
    "chat_error": [{}],
    "chat_cancelled": [{}],
    "chat_import_ask": [{}],
    "chat_import_cancelled": [{}],
    "chat_done_usage": [{}],
    "chat_invite_usage": [{}],
    "chat_invite_refused": [{"code": c} for c in ("invalid", "expired", "used", "inactive")],
    "chat_welcome": [
        {"person": "张敏", "title": "科长", "schedule": "清单", "roles": r, "open_count": n}
        for r, n in ((["official"], 0), (["admin", "leader", "official"], 3))
    ],
    "chat_help": [{"roles": ["official"]}, {"roles": ["admin", "leader", "official"]}],
    "chat_not_understood": [{"roles": ["official"]}],
    "chat_import_waiting": [{"step": "await_file"}, {"step": "await_confirm"}],
    "chat_import_unreadable": [{"name": "a<b>.yaml"}],
    "chat_import_errors": [
        {"name": "x.yaml", "count": 2, "problems": ["x.yaml:1:2: 未知 <人员>"], "more": 3}
    ],
    "chat_import_preview": [{"diff_text": "修改任务 4：title", "warnings": ["w <1>"]}],
    "chat_import_applied": [{"diff_text": "已更新 <清单>"}],
    "chat_tasks": [
        {"rows": [P, {**P, "overdue_days": 0}], "more": 2, "overdue": o, "today": "2022-06-14"}
        for o in (True, False)
    ]
    + [{"rows": [], "more": 0, "overdue": o, "today": "2022-06-14"} for o in (True, False)],
    "chat_lang": [{"lang": "zh-CN"}],
    "chat_lang_set": [{"lang": "en"}],
    "chat_digest_empty": [{"p": P}],
    "chat_invite_unknown": [{"name": "王<五>"}],
    "chat_invite_link": [{"name": "张敏", "link": "https://t.me/b?start=abc", "expires": "x"}],
    "chat_report_caption": [{"tasks": 3}],
    "chat_ask_evidence": [{"p": P, "required": r} for r in (True, False)],
    "chat_ask_progress": [{"p": P}],
    "chat_ask_date": [
        {"p": P, "error": None},
        {"p": P, "error": "unparsed"},
        {"p": P, "error": "not_later", "given": "2022-06-09"},
    ],
    "chat_ask_reason": [{"p": P, "new_date": "2022-06-17"}],
    "chat_extension_sent": [{"p": P, "new_date": "2022-06-17", "reason": "设备<未>到货"}],
    "chat_extension_decided": [
        {"p": P, "approved": a, "asker": "张敏", "requested": "2022-06-17"} for a in (True, False)
    ],
    "chat_not_mine_sent": [{"p": P}],
    "chat_nudged": [{"p": P, "count": 2}],
    "chat_choose": [{"p": P}],
    "chat_done": [
        {"p": {**P, "status": s}, "note": n, "evidence_count": e, "finished": s == "done"}
        for s, n, e in (("done", "纪要<已>归档", 2), ("open", None, 0))
    ],
    "chat_progress_saved": [
        {"p": {**P, "status": s}, "percent": pc} for s, pc in (("open", 60), ("done", None))
    ],
}


def chat_templates() -> set[str]:
    return {
        path.name.removesuffix(".html.j2")
        for path in (templates_dir() / "zh-CN").glob("chat_*.html.j2")
    }


def test_every_chat_template_is_covered_and_exists_in_both_languages() -> None:
    assert chat_templates() == set(CONTEXTS)
    for lang in LANGS:
        names = {p.name for p in Path(templates_dir(), lang).glob("chat_*")}
        assert names == {p.name for p in Path(templates_dir(), "zh-CN").glob("chat_*")}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("kind", sorted(CONTEXTS))
def test_renders_as_telegram_html(kind: str, lang: str) -> None:
    for context in CONTEXTS[kind]:
        text = render(f"{kind}.html", lang, **context)
        visible = parse_html(text)  # raises as the Bot API would on bad markup
        assert visible.strip()
        assert "<落实>" not in text and "<人员>" not in text  # user data escaped


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
