"""The conversation without any chat platform: events in, store changes and replies out.

Every flow runs on SQLite and PostgreSQL.  Authorisation is checked from the person a chat
is bound to; buttons carry signed data made by the same Signer the adapter would use.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from bot.clock import SimulatedClock
from bot.conversation.events import Attachment, Inbound, Outcome
from bot.conversation.invites import redeem
from bot.conversation.service import ChatConfig, Conversation
from bot.messages import plain_text
from bot.outbox import notification_row
from bot.signing import Signer
from bot.store.db import session_scope
from bot.store.models import (
    AuditEvent,
    ChatBinding,
    ChatState,
    Evidence,
    Notification,
    Occurrence,
    Person,
    Reply,
    Schedule,
    Task,
)
from tests.conftest import local
from tests.fakes.chat import CHATS, REMIND_DAY, SCHEDULE_ID, SCHEDULE_YAML, seed
from tests.fakes.outbox import record_sent

SIGNER = Signer(b"test-secret")
ZHANG, XIONG, LI, DENG = (str(CHATS[n]) for n in ("张敏", "熊伟", "李强", "邓清华"))


class Files:
    """A FileSource over a dict: what the platform would serve for each file_id."""

    def __init__(self) -> None:
        self.content: dict[str, bytes] = {}
        self.fetched: list[str] = []

    async def fetch(self, attachment: Attachment) -> bytes:
        self.fetched.append(attachment.file_id)
        return self.content[attachment.file_id]


class Chat:
    """Drives a Conversation as a platform adapter would."""

    def __init__(self, engine: Engine, clock: SimulatedClock, **config: Any) -> None:
        self.engine, self.clock, self.files = engine, clock, Files()
        self.links: list[str] = []
        self.conversation = self.restart(**config)

    def restart(self, **config: Any) -> Conversation:
        """A new Conversation on the same store: what a process restart leaves."""
        self.conversation = Conversation(
            db=self.engine,
            clock=self.clock,
            signer=SIGNER,
            platform="telegram",
            config=ChatConfig(**config),
            files=self.files,
            invite_link=lambda token: self.links.append(token) or f"https://t.me/bot?start={token}",
        )
        return self.conversation

    def event(self, chat: str, **fields: Any) -> Outcome:
        return asyncio.run(self.conversation.handle(Inbound("telegram", chat, chat, **fields)))

    def say(self, chat: str, text: str, **fields: Any) -> Outcome:
        return self.event(chat, text=text, **fields)

    def command(self, chat: str, name: str, args: str = "") -> Outcome:
        return self.event(chat, command=name, args=args, text=args)

    def press(self, chat: str, action: str, ref: int, message_ref: str | None = "9") -> Outcome:
        return self.event(chat, callback=SIGNER.sign(action, ref), message_ref=message_ref)


def text(outcome: Outcome) -> str:
    """What the person reads (any adapter's rendering has the same words)."""
    return "\n".join(plain_text(say.message) for say in outcome.says)


def kinds(outcome: Outcome) -> list[str]:
    return [say.kind for say in outcome.says]


def refusal(outcome: Outcome) -> str | None:
    """The refusal code of a reply (None when the reply is not a refusal)."""
    said = outcome.says[0] if outcome.says else None
    return said.context["code"] if said and said.kind == "chat_refusal" else None


def bind_all(engine: Engine) -> None:
    tokens = seed(engine)
    with session_scope(engine) as session:
        for name, token in tokens.items():
            redeem(
                session, token=token, platform="telegram", chat_id=str(CHATS[name]), now=REMIND_DAY
            )


def occ_id(engine: Engine, ref: str = "4") -> int:
    with Session(engine) as session:
        found = session.exec(
            select(Occurrence.id)
            .join(Task, col(Task.id) == Occurrence.task_id)
            .where(Task.ref == ref)
            .order_by(col(Occurrence.due_date))
        ).first()
    assert found is not None
    return found


def occurrence(engine: Engine, ref: str = "4") -> Occurrence:
    with Session(engine) as session:
        found = session.get(Occurrence, occ_id(engine, ref))
        assert found is not None
        return found


def replies(engine: Engine) -> list[Reply]:
    with Session(engine) as session:
        return list(session.exec(select(Reply).order_by(col(Reply.id))).all())


def outbox(engine: Engine, kind: str) -> list[Notification]:
    with Session(engine) as session:
        return list(session.exec(select(Notification).where(Notification.kind == kind)).all())


def reminder_sent(engine: Engine, name: str, message_ref: str, ref: str = "4") -> None:
    """A reminder as the dispatcher leaves it: sent, with the platform's message id."""
    with Session(engine) as session:
        person = session.exec(select(Person).where(Person.name == name)).one()
    row = notification_row(
        key=f"test:{name}:{message_ref}",
        kind="reminder",
        person_id=person.id,  # type: ignore[arg-type]
        not_before=REMIND_DAY,
        now=REMIND_DAY,
        schedule_id=SCHEDULE_ID,
        occurrence_id=occ_id(engine, ref),
    )
    record_sent(engine, row, platform="telegram", message_ref=message_ref)


@pytest.fixture
def chat(engine: Engine) -> Chat:
    bind_all(engine)
    return Chat(engine, SimulatedClock(REMIND_DAY))


# ---- who may do what -------------------------------------------------------------------------


def test_an_unbound_chat_learns_nothing(chat: Chat) -> None:
    for outcome in (
        chat.command("999", "tasks"),
        chat.command("999", "digest"),
        chat.say("999", "已完成"),
        chat.command("999", "start"),
    ):
        said = text(outcome)
        assert "尚未绑定任何人员" in said
        assert all(secret not in said for secret in ("测试县", "党组", "张敏", SCHEDULE_ID))
    button = chat.press("999", "done", occ_id(chat.engine))
    assert button.alert and "尚未绑定" in (button.toast or "") and not button.says
    assert "Hello" in text(chat.event("999", text="hi", language="en"))


def test_groups_are_ignored(chat: Chat) -> None:
    assert chat.event("-100123", command="tasks", private=False) == Outcome()


def test_an_official_acts_only_on_what_is_assigned_to_them(chat: Chat) -> None:
    occ = occ_id(chat.engine)
    for action in ("done", "progress", "extend", "not_mine", "done_now"):
        refused = chat.press(LI, action, occ)  # the admin is not an assignee of task 4
        assert refused.alert and "不是分配给您的事项" in (refused.toast or ""), action
    assert refusal(chat.command(LI, "done", f"{occ} 我来替他报")) == "not_assigned"
    assert "不是分配给您的事项" in text(chat.command(LI, "done", f"{occ} 我来替他报"))
    assert replies(chat.engine) == [] and occurrence(chat.engine).status == "open"
    with Session(chat.engine) as session:
        assert session.exec(select(ChatState)).all() == []


def test_only_admins_import_invite_and_report(chat: Chat) -> None:
    for name in ("import", "invite", "report"):
        assert refusal(chat.command(ZHANG, name, "熊伟")) == "not_admin"
    assert refusal(chat.command(ZHANG, "digest")) == "not_leader"
    assert "只有清单管理员" in text(chat.command(ZHANG, "report"))


def test_only_the_lead_decides_an_extension(chat: Chat) -> None:
    occ = occ_id(chat.engine)
    chat.press(ZHANG, "extend", occ)
    chat.say(ZHANG, "6月17日")
    chat.say(ZHANG, "设备未到货")
    request = replies(chat.engine)[-1]
    for who in (ZHANG, LI, DENG):  # the asker, an admin, even the chief: not the lead
        refused = chat.press(who, "approve", request.id)  # type: ignore[arg-type]
        assert refused.alert and "牵头领导" in (refused.toast or "")
    decided = chat.press(XIONG, "deny", request.id)  # type: ignore[arg-type]
    assert kinds(decided) == ["chat_extension_decided"] and decided.clear_buttons == ["9"]
    assert decided.says[0].context["approved"] is False and "未同意" in text(decided)
    assert replies(chat.engine)[-1].decision == "denied"
    again = chat.press(XIONG, "approve", request.id)  # type: ignore[arg-type]
    assert "已办结或已取消" in (again.toast or "")  # decided already: a stale card
    assert occurrence(chat.engine).extended_to is None


# ---- done ---------------------------------------------------------------------------------------


def test_done_button_then_note(chat: Chat) -> None:
    occ = occ_id(chat.engine)
    asked = chat.press(ZHANG, "done", occ, message_ref="41")
    assert kinds(asked) == ["chat_ask_evidence"] and not asked.alert
    assert [b.action for b in asked.says[0].actions[0]] == ["done_now", "cancel"]
    done = chat.say(ZHANG, "已召开党组会议专题研究")
    assert kinds(done) == ["chat_done"] and done.clear_buttons == ["41"]
    assert done.says[0].context["finished"] and "已记录完成" in text(done)
    reply = replies(chat.engine)[-1]
    assert (reply.kind, reply.note) == ("done", "已召开党组会议专题研究")
    assert occurrence(chat.engine).status == "done"
    assert {n.payload["by"] for n in outbox(chat.engine, "completed")} == {"张敏"}  # type: ignore[index]
    with Session(chat.engine) as session:  # the audit trail says how it came
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "reply_done")).one()
    assert (event.channel, event.platform) == ("chat", "telegram")


def test_done_with_evidence_required_asks_for_it(chat: Chat, tmp_path: Path) -> None:
    chat.restart(evidence_dir=tmp_path)
    occ = occ_id(chat.engine, "5")
    asked = chat.press(ZHANG, "done", occ)
    assert asked.says[0].context["required"] and "本任务要求提供佐证材料" in text(asked)
    assert [b.action for b in asked.says[0].actions[0]] == ["cancel"]
    refused = chat.press(ZHANG, "done_now", occ)  # a crafted "no note" is still refused
    assert (
        "要求提供佐证材料" in (refused.toast or "")
        and occurrence(chat.engine, "5").status == "open"
    )
    chat.files.content["DOC-1"] = b"%PDF-1.4 inspection report"
    sent = chat.event(
        ZHANG,
        attachments=(Attachment("document", "DOC-1", "检查记录.pdf", "application/pdf", 26, "U1"),),
    )
    assert sent.says[0].context["evidence_count"] == 1 and "佐证材料：1 份" in text(sent)
    with Session(chat.engine) as session:
        evidence = session.exec(select(Evidence)).one()
    assert (evidence.kind, evidence.file_id, evidence.file_name) == (
        "document",
        "DOC-1",
        "检查记录.pdf",
    )
    assert evidence.local_path and Path(evidence.local_path).read_bytes().startswith(b"%PDF")
    assert occurrence(chat.engine, "5").status == "done"


def test_done_command_with_and_without_a_note(chat: Chat) -> None:
    assert "用法：/done 编号 说明" in text(chat.command(ZHANG, "done"))
    occ5 = occ_id(chat.engine, "5")
    asked = chat.command(ZHANG, "done", str(occ5))  # evidence required, none given: asked
    assert "本任务要求提供佐证材料" in text(asked)
    done = chat.command(ZHANG, "done", f"#{occ5} 已完成全县大检查，发现隐患12处")
    assert "已记录完成" in text(done)
    assert replies(chat.engine)[-1].note == "已完成全县大检查，发现隐患12处"


def test_plain_reply_to_a_reminder_with_a_file(chat: Chat, tmp_path: Path) -> None:
    chat.restart(evidence_dir=tmp_path)
    reminder_sent(chat.engine, "张敏", "77")
    chat.files.content["PHOTO-9"] = b"\xff\xd8minutes"
    done = chat.event(
        ZHANG,
        text="已完成，会议纪要见附件",
        reply_to="77",
        attachments=(Attachment("photo", "PHOTO-9", None, "image/jpeg", 9, "UQ9"),),
    )
    assert "已记录完成" in text(done) and "77" in done.clear_buttons
    reply = replies(chat.engine)[-1]
    assert (reply.kind, reply.note) == ("done", "会议纪要见附件")
    with Session(chat.engine) as session:
        evidence = session.exec(select(Evidence)).one()
    assert (
        evidence.kind == "photo"
        and Path(str(evidence.local_path)).read_bytes() == b"\xff\xd8minutes"
    )
    assert chat.files.fetched == ["PHOTO-9"]


def test_a_reply_quoting_someone_elses_reminder_does_nothing(chat: Chat) -> None:
    reminder_sent(chat.engine, "张敏", "77")
    # 李强's own message 77 is not a reminder to him: nothing is quoted
    said = chat.say(LI, "已完成", reply_to="77")
    assert "没有看懂" in text(said) and replies(chat.engine) == []


def test_an_unclear_reply_to_a_reminder_offers_the_buttons(chat: Chat) -> None:
    reminder_sent(chat.engine, "张敏", "77")
    offered = chat.say(ZHANG, "这个怎么办？", reply_to="77")
    labels = [b.label for row in offered.says[0].actions for b in row]
    assert labels == ["✅ 已完成", "📝 汇报进展", "⏳ 申请延期", "🙅 不是我的任务"]
    assert all(
        SIGNER.verify(SIGNER.encode(b)).ref == occ_id(chat.engine)
        for row in offered.says[0].actions
        for b in row
    )


# ---- progress, extension, not mine ---------------------------------------------------------------


def test_progress_with_a_percentage(chat: Chat) -> None:
    occ = occ_id(chat.engine)
    chat.press(ZHANG, "progress", occ)
    too_much = chat.say(ZHANG, "完成了150%")
    assert refusal(too_much) == "bad_percent" and "0 到 100" in text(too_much)
    chat.press(ZHANG, "progress", occ)
    saved = chat.say(ZHANG, "已起草会议方案，约 60％")
    assert kinds(saved) == ["chat_progress_saved"] and saved.says[0].context["percent"] == 60
    assert "进展已记录" in text(saved) and "60%" in text(saved)
    reply = replies(chat.engine)[-1]
    assert (reply.kind, reply.percent) == ("progress", 60)
    # and by quoting a reminder
    reminder_sent(chat.engine, "张敏", "78")
    chat.say(ZHANG, "进展：已报党组审定", reply_to="78")
    assert replies(chat.engine)[-1].note == "已报党组审定"
    assert occurrence(chat.engine).status == "open"


def test_extension_in_one_reply(chat: Chat) -> None:
    reminder_sent(chat.engine, "张敏", "77")
    sent = chat.say(ZHANG, "申请延期到下周五，因为设备未到货", reply_to="77")
    assert kinds(sent) == ["chat_extension_sent"]
    assert sent.says[0].context["requested_date"] == "2022-06-17" and "2022-06-17" in text(sent)
    reply = replies(chat.engine)[-1]
    assert reply.requested_date is not None and reply.requested_date.isoformat() == "2022-06-17"
    assert reply.note == "设备未到货"
    card = outbox(chat.engine, "extension_request")
    assert [n.payload["reply_id"] for n in card] == [reply.id]  # type: ignore[index]


def test_extension_date_must_be_later(chat: Chat) -> None:
    chat.press(ZHANG, "extend", occ_id(chat.engine))
    assert chat.say(ZHANG, "等领导定").says[0].context["error"] == "unparsed"
    assert "须晚于当前时限 2022-06-10" in text(chat.say(ZHANG, "明天"))
    assert "延期理由" in text(chat.say(ZHANG, "6月24日"))
    assert "延期申请已提交" in text(chat.say(ZHANG, "配合单位人员调整"))


def test_not_mine_tells_the_admins(chat: Chat) -> None:
    told = chat.press(ZHANG, "not_mine", occ_id(chat.engine), message_ref="55")
    assert kinds(told) == ["chat_not_mine_sent"] and told.clear_buttons == ["55"]
    assert "已告知清单管理员" in text(told)
    with Session(chat.engine) as session:
        li = session.exec(select(Person).where(Person.name == "李强")).one()
    assert [n.person_id for n in outbox(chat.engine, "not_mine")] == [li.id]


# ---- flow state -----------------------------------------------------------------------------------


def test_a_flow_survives_a_restart(chat: Chat) -> None:
    chat.press(ZHANG, "extend", occ_id(chat.engine))
    chat.say(ZHANG, "6月24日")
    chat.restart()  # the process restarts between two messages
    assert "延期申请已提交" in text(chat.say(ZHANG, "设备未到货"))


def test_an_abandoned_flow_lapses(chat: Chat) -> None:
    chat.press(ZHANG, "done", occ_id(chat.engine))
    chat.clock.advance(timedelta(hours=25))
    said = chat.say(ZHANG, "今天天气不错")
    assert "没有看懂" in text(said)
    assert replies(chat.engine) == []


def test_cancel_by_word_button_or_command(chat: Chat) -> None:
    occ = occ_id(chat.engine)
    for cancel in (
        lambda: chat.say(ZHANG, "取消"),
        lambda: chat.press(ZHANG, "cancel", 0),
        lambda: chat.command(ZHANG, "cancel"),
    ):
        chat.press(ZHANG, "done", occ)
        assert "已取消" in text(cancel())
        with Session(chat.engine) as session:
            assert session.exec(select(func.count()).select_from(ChatState)).one() == 0
    assert replies(chat.engine) == []


def test_a_flow_on_an_occurrence_closed_meanwhile_is_refused(chat: Chat) -> None:
    occ = occ_id(chat.engine)
    chat.press(ZHANG, "progress", occ)
    chat.press(XIONG, "done_now", occ)  # the lead closes it meanwhile
    said = chat.say(ZHANG, "进展 50%")
    assert refusal(said) == "closed" and "已办结或已取消" in text(said)


# ---- lists, digest, nudge ------------------------------------------------------------------------


def test_tasks_soonest_first_and_overdue(chat: Chat) -> None:
    listed = text(chat.command(ZHANG, "tasks"))
    assert listed.index("4. 党组专题研究") < listed.index("5. 开展安全生产大检查")
    assert "/done" in listed
    assert "没有逾期事项" in text(chat.command(ZHANG, "overdue"))
    assert "目前没有待办事项" in text(chat.command(DENG, "tasks"))  # the chief is not chased
    chat.clock.set(local(2022, 6, 14, 9, 0))
    overdue = text(chat.command(ZHANG, "overdue"))
    assert "党组专题研究" in overdue and "已逾期 2 个工作日" in overdue
    assert "开展安全生产大检查" not in overdue
    assert "我的待办" in text(chat.say(ZHANG, "我的任务"))  # a plain word works too
    listing = chat.command(ZHANG, "tasks").says[0]
    assert [row["ref"] for row in listing.context["items"]] == ["4", "5"]
    assert [item.level for item in listing.message.items] == ["red", "blue"]


def test_digest_and_nudge(chat: Chat) -> None:
    assert "没有逾期事项" in text(chat.command(XIONG, "digest"))
    chat.clock.set(local(2022, 6, 14, 9, 0))
    digest = chat.command(XIONG, "digest")
    assert kinds(digest) == ["digest"] and "逾期未办 1 项" in text(digest)
    nudge = digest.says[0].message.items[0].actions[0]
    assert nudge.action == "nudge" and nudge.ref == occ_id(chat.engine)
    done = chat.press(XIONG, "nudge", nudge.ref)
    assert "已催办" in text(done) and "1 名" in text(done)
    assert [n.payload["by"] for n in outbox(chat.engine, "nudge")] == ["熊伟"]  # type: ignore[index]
    # an assignee cannot nudge
    refused = chat.press(ZHANG, "nudge", nudge.ref)
    assert refused.alert and outbox(chat.engine, "nudge")[-1].payload["by"] == "熊伟"  # type: ignore[index]
    # the chief sees the whole schedule; "/digest 全部" lists every overdue item, not one screen
    assert "全部事项" in text(chat.command(DENG, "digest"))
    for args, full in (("", False), ("全部", True), ("all", True)):
        said = chat.command(DENG, "digest", args).says[0]
        assert said.kind == "digest" and said.context["payloads"][0]["full"] is full


# ---- language, invite, report ---------------------------------------------------------------------


def test_language_switch(chat: Chat) -> None:
    choose = chat.command(ZHANG, "lang")
    labels = [b.label for b in choose.says[0].actions[0]]
    assert labels == ["中文", "English"]
    switched = chat.press(ZHANG, "lang", 1)
    assert "English" in text(switched)
    assert "My open items" in text(chat.command(ZHANG, "tasks"))
    asked = chat.press(ZHANG, "done", occ_id(chat.engine, "4"))
    assert "Report done" in text(asked) and asked.toast == "Go on"
    assert "已切换为中文" in text(chat.command(ZHANG, "lang", "zh"))


def test_invite_from_chat(chat: Chat) -> None:
    assert "用法：/invite 姓名" in text(chat.command(LI, "invite"))
    assert "没有名为“王五”的人员" in text(chat.command(LI, "invite", "王五"))
    said = text(chat.command(LI, "invite", "邓清华"))
    assert "https://t.me/bot?start=" in said and "仅可使用一次" in said
    token = chat.links[-1]
    assert "绑定成功" in text(chat.command("801", "start", token))
    with Session(chat.engine) as session:
        binding = session.exec(select(ChatBinding).where(ChatBinding.chat_id == "801")).one()
        bound = session.exec(select(Person).where(Person.identity_id == binding.identity_id)).one()
        assert bound.name == "邓清华"


def test_report_sends_the_ledger(chat: Chat) -> None:
    outcome = chat.command(LI, "report")
    document = outcome.says[0].document
    assert document is not None and document.file_name.endswith(".xlsx")
    assert document.content.startswith(b"PK")  # a zip: the xlsx container
    assert outcome.says[0].kind == "chat_report_caption" and outcome.says[0].context["tasks"] == 2
    assert outcome.says[0].message.document == document and "台账" in text(outcome)


# ---- import ---------------------------------------------------------------------------------------


def upload(chat: Chat, who: str, content: str, name: str = "list.yaml") -> Outcome:
    file_id = f"YAML-{len(chat.files.content)}"
    chat.files.content[file_id] = content.encode()
    return chat.event(
        who,
        attachments=(Attachment("document", file_id, name, "text/yaml", len(content.encode())),),
    )


def schedule_hash(engine: Engine) -> str:
    with Session(engine) as session:
        found = session.get(Schedule, SCHEDULE_ID)
        assert found is not None
        return found.content_hash


def test_import_preview_then_discard_changes_nothing(chat: Chat) -> None:
    before = schedule_hash(chat.engine)
    changed = SCHEDULE_YAML.replace("due: 2022-06-10", "due: 2022-06-17")
    preview = upload(chat, LI, changed)  # an admin may send the file without /import
    assert "导入预览" in text(preview) and "修改任务 4" in text(preview)
    labels = [b.action for b in preview.says[0].actions[0]]
    assert labels == ["import_ok", "import_no"]
    assert schedule_hash(chat.engine) == before
    assert "已放弃导入" in text(chat.press(LI, "import_no", 0))
    assert schedule_hash(chat.engine) == before
    stale = chat.press(LI, "import_ok", 0)
    assert "没有等待确认的导入" in (stale.toast or "")


def test_import_of_the_same_file_says_unchanged(chat: Chat) -> None:
    chat.command(LI, "import")
    assert "未做任何改动" in text(upload(chat, LI, SCHEDULE_YAML))


def test_import_refuses_someone_elses_schedule_and_bad_files(chat: Chat) -> None:
    other = SCHEDULE_YAML.replace("schedule: e2e-2022", "schedule: other-2022")
    with session_scope(chat.engine) as session:
        session.add(
            Schedule(
                id="other-2022",
                title="另一份清单",
                content_hash="x",
                planned_from=REMIND_DAY.date(),
                imported_at=REMIND_DAY,
            )
        )
    assert refusal(upload(chat, LI, other)) == "import_other_schedule"
    chat.command(LI, "import")
    broken = upload(chat, LI, "schedule: [unclosed\n")
    assert "未通过校验" in text(broken) and "list.yaml:" in text(broken)
    chat.command(LI, "import")
    assert "无法读取文件" in text(upload(chat, LI, "x", name="list.txt"))
    # a non-admin's YAML is just a file: nothing is fetched, nothing imported
    assert "没有看懂" in text(upload(chat, ZHANG, SCHEDULE_YAML))


def test_an_album_files_every_photo_with_the_one_completion(chat: Chat, tmp_path: Path) -> None:
    chat.restart(evidence_dir=tmp_path)
    chat.press(ZHANG, "done", occ_id(chat.engine))
    for n in range(3):
        chat.files.content[f"P{n}"] = f"photo {n}".encode()
    first = chat.event(
        ZHANG,
        text="现场检查照片",
        group="album-1",
        attachments=(Attachment("photo", "P0", None, "image/jpeg", 7, "U0"),),
    )
    assert "已记录完成" in text(first)
    for n in (1, 2):
        rest = chat.event(
            ZHANG, group="album-1", attachments=(Attachment("photo", f"P{n}", None, None, 7),)
        )
        assert rest == Outcome()  # filed silently
    with Session(chat.engine) as session:
        evidence = session.exec(select(Evidence).order_by(col(Evidence.id))).all()
    assert [e.file_id for e in evidence] == ["P0", "P1", "P2"]
    assert {e.reply_id for e in evidence} == {replies(chat.engine)[-1].id}
    assert all(Path(str(e.local_path)).exists() for e in evidence)
    # the album is over: the next message is read afresh
    assert "没有看懂" in text(chat.say(ZHANG, "好的"))
