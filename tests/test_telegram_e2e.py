"""End to end: a real python-telegram-bot Application (TelegramFrontend) and the worker, over
real HTTP against the fake Bot API.  Nothing of PTB is patched: updates are pushed into the
fake server, PTB polls them, the conversation acts on the store, the worker's dispatcher
sends what the engine planned, and the tests read what reached the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from bot.adapters.telegram_app import TelegramFrontend
from bot.clock import SimulatedClock
from bot.settings import Settings
from bot.store.models import (
    AuditEvent,
    ChatBinding,
    Evidence,
    Notification,
    Occurrence,
    Person,
    Reply,
    Schedule,
    Task,
)
from bot.web.app import create_app
from bot.web.server import WebServer
from bot.worker import Worker
from tests.conftest import local
from tests.fakes.botapi import Call, FakeBotApi, Fault, parse_html, utf16_len
from tests.fakes.chat import CHATS, REMIND_DAY, SCHEDULE_ID, SCHEDULE_YAML, seed

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


@pytest.fixture
def api() -> Iterator[FakeBotApi]:
    with FakeBotApi() as server:
        yield server


@dataclass
class Bot:
    """The running frontend, the worker, and helpers to talk to them through the fake."""

    api: FakeBotApi
    frontend: TelegramFrontend
    worker: Worker
    clock: SimulatedClock
    engine: Engine

    def said(self, chat: int) -> list[Call]:
        return [c for c in self.api.calls_to("sendMessage", chat_id=chat) if c.status == 200]

    async def wait(self, method: str, chat: int, count: int) -> list[Call]:
        return await self.api.until_calls(method, chat_id=chat, count=count, timeout=10)

    async def expect(self, chat: int, needle: str, timeout: float = 10) -> Call:
        """The first message to ``chat`` containing ``needle``, waiting for it if need be."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for call in self.said(chat):
                if needle in str(call.params.get("text")):
                    return call
            if asyncio.get_running_loop().time() > deadline:
                seen = [c.params.get("text") for c in self.said(chat)]
                raise TimeoutError(f"nothing with {needle!r} sent to {chat}: {seen}")
            await asyncio.sleep(0.01)

    async def send(self, chat: int, text: str, **kwargs: Any) -> Call:
        """A user message; returns the bot's (first) answer."""
        before = len(self.api.calls_to("sendMessage", chat_id=chat))
        self.api.push_message(chat, text, **kwargs)
        return (await self.wait("sendMessage", chat, before + 1))[before]

    async def press(self, chat: int, data: str, message_id: int | None = None) -> Call:
        """A button press; returns the answerCallbackQuery call (the toast)."""
        before = len(self.api.calls_to("answerCallbackQuery"))
        self.api.push_callback(chat, data, message_id=message_id)
        return (await self.api.until_calls("answerCallbackQuery", count=before + 1, timeout=10))[
            before
        ]

    async def bind(self, name: str, token: str) -> Call:
        return await self.send(CHATS[name], f"/start {token}")

    async def tick(self) -> None:
        await self.worker.tick()


def buttons(call: Call) -> dict[str, str]:
    """Label → callback_data of a sent message's inline keyboard."""
    markup = call.params.get("reply_markup") or {}
    return {b["text"]: b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row}


def data_for(call: Call, label_part: str) -> str:
    found = [data for label, data in buttons(call).items() if label_part in label]
    assert found, f"no button with {label_part!r} in {list(buttons(call))}"
    return found[0]


def message_id(api: FakeBotApi, chat: int, call: Call) -> int:
    """The message id the fake gave a sendMessage call (messages are numbered per chat)."""
    sent = [c for c in api.calls_to("sendMessage", chat_id=chat) if c.status == 200]
    ours = [m for m in api.sent_messages(chat) if "text" in m and m.get("text")]
    index = sent.index(call)
    return int(ours[index]["message_id"])


@asynccontextmanager
async def running(
    engine: Engine, api: FakeBotApi, clock: SimulatedClock, **options: Any
) -> AsyncIterator[Bot]:
    settings = Settings(
        telegram_token=api.token,
        telegram_base_url=api.base_url,
        telegram_poll_timeout=1,
        telegram_read_timeout=2,
        telegram_connect_timeout=2,
        **options,
    )
    frontend = TelegramFrontend(settings=settings, db=engine, clock=clock)
    frontend.adapter.limits = None  # pacing is the dispatcher's and measured elsewhere
    worker = Worker(engine, frontend.adapter, clock, name="e2e")
    await frontend.start()
    try:
        yield Bot(api, frontend, worker, clock, engine)
    finally:
        await frontend.stop()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def occurrence(engine: Engine, ref: str) -> Occurrence:
    with Session(engine) as session:
        return session.exec(
            select(Occurrence)
            .join(Task, Task.id == Occurrence.task_id)  # type: ignore[arg-type]
            .where(Task.ref == ref)
            .order_by(Occurrence.due_date)  # type: ignore[arg-type]
        ).first()  # type: ignore[return-value]


def count(engine: Engine, model: Any) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


# ---- the scenarios ---------------------------------------------------------------------------


def test_invite_bind_remind_done_with_photo_and_lead_is_told(
    engine: Engine, api: FakeBotApi, tmp_path: Path
) -> None:
    tokens = seed(engine)
    clock = SimulatedClock(REMIND_DAY)
    evidence_dir = tmp_path / "evidence"

    async def scenario() -> None:
        async with running(engine, api, clock, evidence_dir=str(evidence_dir)) as bot:
            welcome = await bot.bind("张敏", tokens["张敏"])
            assert "绑定成功" in welcome.params["text"] and "张敏" in welcome.params["text"]
            await bot.bind("熊伟", tokens["熊伟"])
            await bot.bind("李强", tokens["李强"])
            # commands are registered in Chinese (default and zh) and English
            registered = api.calls_to("setMyCommands")
            assert {c.params.get("language_code") for c in registered} == {None, "zh", "en"}
            zh = next(c for c in registered if c.params.get("language_code") == "zh")
            assert {"command": "tasks", "description": "我的待办"} in zh.params["commands"]

            await bot.tick()  # the engine plans the -3 reminder; the dispatcher sends it
            reminder = (await bot.wait("sendMessage", 501, 2))[1]
            assert "党组专题研究" in reminder.params["text"]
            keys = buttons(reminder)
            assert set(keys) == {"✅ 已完成", "📝 汇报进展", "⏳ 申请延期", "🙅 不是我的任务"}
            assert all(len(d.encode()) <= 64 for d in keys.values())

            toast = await bot.press(501, keys["✅ 已完成"])
            assert toast.params.get("show_alert") in (None, False)
            ask = (await bot.wait("sendMessage", 501, 3))[2]
            assert "请发送完成情况说明或佐证材料" in ask.params["text"]
            assert any("直接完成" in label for label in buttons(ask))

            api.push_photo(501, b"\xff\xd8\xff\xe0minutes-photo", caption="会议纪要已归档")
            done = (await bot.wait("sendMessage", 501, 4))[3]
            assert "已记录完成" in done.params["text"]
            assert "已通知牵头领导和配合单位" in done.params["text"]
            # the reminder's buttons are taken off once it is answered
            edits = api.calls_to("editMessageReplyMarkup", chat_id=501)
            assert any(c.params["message_id"] == message_id(api, 501, reminder) for c in edits)

            await bot.tick()  # the lead and the partner unit hear of it
            told_lead = await bot.expect(502, "已办结")
            assert "张敏" in told_lead.params["text"]
            assert "会议纪要已归档" in told_lead.params["text"]
            await bot.expect(503, "已办结")

    run(scenario())
    occ = occurrence(engine, "4")
    assert occ.status == "done"
    with Session(engine) as session:
        reply = session.exec(select(Reply).where(Reply.occurrence_id == occ.id)).one()
        assert reply.kind == "done" and reply.note == "会议纪要已归档"
        evidence = session.exec(select(Evidence).where(Evidence.reply_id == reply.id)).one()
        bound = session.exec(select(AuditEvent).where(AuditEvent.action == "chat_bound")).all()
    assert evidence.kind == "photo" and evidence.file_id and evidence.mime_type == "image/jpeg"
    assert evidence.local_path and Path(evidence.local_path).read_bytes().endswith(b"minutes-photo")
    assert Path(evidence.local_path).is_relative_to(evidence_dir)
    assert len(bound) == 3


def test_extension_request_lead_approves_and_reminders_are_replanned(
    engine: Engine, api: FakeBotApi
) -> None:
    tokens = seed(engine)
    clock = SimulatedClock(REMIND_DAY)

    async def scenario() -> None:
        async with running(engine, api, clock) as bot:
            for name in ("张敏", "熊伟"):
                await bot.bind(name, tokens[name])
            await bot.tick()
            reminder = (await bot.wait("sendMessage", 501, 2))[1]

            await bot.press(501, buttons(reminder)["⏳ 申请延期"])
            ask_date = (await bot.wait("sendMessage", 501, 3))[2]
            assert "6月15日、下周五、2022-06-15" in ask_date.params["text"]
            unclear = await bot.send(501, "过几天吧")
            assert "没有看懂这个日期" in unclear.params["text"]
            too_early = await bot.send(501, "6月9日")
            assert "须晚于当前时限 2022-06-10" in too_early.params["text"]
            ask_reason = await bot.send(501, "下周五")  # Friday of next week: 2022-06-17
            assert "2022-06-17" in ask_reason.params["text"]
            sent = await bot.send(501, "设备尚未到货")
            assert "延期申请已提交" in sent.params["text"]

            await bot.tick()  # the lead gets an approve / deny card
            card = await bot.expect(502, "延期申请")
            assert "2022-06-17" in card.params["text"]
            approve = data_for(card, "同意延期")

            # only the lead may decide: the asker pressing the lead's button is refused
            refused = await bot.press(501, approve)
            assert refused.params["show_alert"] is True
            assert "只有该任务的牵头领导可以审批延期" in refused.params["text"]

            await bot.press(502, approve, message_id=message_id(api, 502, card))
            decided = await bot.expect(502, "已同意")
            assert "2022-06-17" in decided.params["text"]

            await bot.tick()  # the asker is told; the engine re-plans from the new date
            await bot.expect(501, "同意")
            occ = occurrence(engine, "4")
            assert occ.extended_to is not None and occ.extended_to.isoformat() == "2022-06-17"
            assert occ.planned_due == occ.extended_to
            assert occ.next_action_at == local(2022, 6, 14, 8, 30)  # -3 working days, re-planned

            clock.set(local(2022, 6, 14, 8, 31))
            before = len(bot.said(501))
            await bot.tick()
            again = (await bot.wait("sendMessage", 501, before + 1))[before]
            assert (
                "2022-06-17" in again.params["text"] and "原为 2022-06-10" in again.params["text"]
            )

    run(scenario())


def test_forged_foreign_and_stale_buttons_change_nothing(engine: Engine, api: FakeBotApi) -> None:
    tokens = seed(engine)
    clock = SimulatedClock(REMIND_DAY)

    async def scenario() -> None:
        async with running(engine, api, clock) as bot:
            for name in ("张敏", "李强"):
                await bot.bind(name, tokens[name])
            await bot.tick()
            reminder = (await bot.wait("sendMessage", 501, 2))[1]
            done = buttons(reminder)["✅ 已完成"]
            occ_id = occurrence(engine, "4").id
            replies_before = count(engine, Reply)

            # a forged button: right shape, made-up signature
            forged = await bot.press(501, f"d:{occ_id}:AAAAAAAAAAAAAAAA")
            assert forged.params["show_alert"] is True
            assert "无法识别" in forged.params["text"]
            # unsigned or garbage data
            garbage = await bot.press(501, f"done:{occ_id}")
            assert "无法识别" in garbage.params["text"]
            # a genuine button pressed by someone it is not assigned to (the admin)
            foreign = await bot.press(503, done)
            assert "不是分配给您的事项" in foreign.params["text"]
            assert count(engine, Reply) == replies_before
            assert occurrence(engine, "4").status == "open"

            # the assignee completes it with one tap on 直接完成
            await bot.press(501, done)
            ask = (await bot.wait("sendMessage", 501, 3))[2]
            await bot.press(501, data_for(ask, "直接完成"))
            await bot.wait("sendMessage", 501, 4)
            assert occurrence(engine, "4").status == "done"
            replies_after = count(engine, Reply)

            # the old reminder's button now answers politely and changes nothing
            stale = await bot.press(501, done)
            assert "已办结或已取消" in stale.params["text"]
            stale_extend = await bot.press(501, buttons(reminder)["⏳ 申请延期"])
            assert "已办结或已取消" in stale_extend.params["text"]
            assert count(engine, Reply) == replies_after

    run(scenario())


def test_unknown_chat_is_refused_and_learns_nothing(engine: Engine, api: FakeBotApi) -> None:
    tokens = seed(engine)
    clock = SimulatedClock(REMIND_DAY)

    async def scenario() -> None:
        async with running(engine, api, clock) as bot:
            for text in ("/tasks", "/start", "已完成", "/digest", "/import"):
                answer = await bot.send(777, text)
                said = answer.params["text"]
                assert "尚未绑定任何人员" in said
                for secret in ("测试县", "党组专题研究", "张敏", "熊伟", "e2e-2022"):
                    assert secret not in said
            bad = await bot.send(777, "/start not-a-real-token")
            assert "邀请链接无效" in bad.params["text"]
            # a used token does not bind a second chat
            await bot.bind("张敏", tokens["张敏"])
            reused = await bot.send(778, f"/start {tokens['张敏']}")
            assert "已被使用过" in reused.params["text"]
            # a button pressed in an unbound chat
            toast = await bot.press(779, "d:1:AAAAAAAAAAAAAAAA")
            assert toast.params["show_alert"] is True

    run(scenario())
    with Session(engine) as session:
        chats = [b.chat_id for b in session.exec(select(ChatBinding)).all()]
    assert chats == ["501"]


def test_admin_import_of_a_bad_file_shows_errors_and_changes_nothing(
    engine: Engine, api: FakeBotApi
) -> None:
    tokens = seed(engine)
    clock = SimulatedClock(REMIND_DAY)
    with Session(engine) as session:
        before = session.get(Schedule, SCHEDULE_ID)
        assert before is not None
        hash_before, tasks_before = before.content_hash, count(engine, Task)
    bad = SCHEDULE_YAML.replace(
        "lead: [熊伟]\n    units: [能源科]\n    partners",
        "lead: [熊玮]\n    units: [能源科]\n    partners",
    )
    bad = bad.replace("due: 2022-07-29", "due: 2022-07-29\n    every: month")

    async def scenario() -> None:
        async with running(engine, api, clock) as bot:
            for name in ("张敏", "李强"):
                await bot.bind(name, tokens[name])
            # not an admin: refused
            refused = await bot.send(501, "/import")
            assert "只有清单管理员" in refused.params["text"]

            ask = await bot.send(503, "/import")
            assert "请发送责任清单文件" in ask.params["text"]
            before = len(bot.said(503))
            api.push_document(503, bad.encode(), file_name="new.yaml", mime_type="text/yaml")
            errors = (await bot.wait("sendMessage", 503, before + 1))[before]
            text = errors.params["text"]
            assert "未通过校验" in text and "未做任何改动" in text
            assert "new.yaml:" in text and "熊伟" in text  # the hint: did you mean 熊伟?

            # a good file: preview, confirm, applied
            good = SCHEDULE_YAML.replace("开展安全生产大检查", "开展安全生产大检查和隐患排查")
            before = len(bot.said(503))
            api.push_document(503, good.encode(), file_name="new.yaml", mime_type="text/yaml")
            preview = (await bot.wait("sendMessage", 503, before + 1))[before]
            assert "导入预览（尚未生效）" in preview.params["text"]
            with Session(engine) as session:
                assert session.get(Schedule, SCHEDULE_ID).content_hash == hash_before  # type: ignore[union-attr]
            await bot.press(503, data_for(preview, "确认导入"))
            applied = (await bot.wait("sendMessage", 503, before + 2))[before + 1]
            assert "导入完成" in applied.params["text"] and "修改任务 5" in applied.params["text"]

    run(scenario())
    with Session(engine) as session:
        schedule = session.get(Schedule, SCHEDULE_ID)
        assert schedule is not None and schedule.content_hash != hash_before
        task = session.exec(select(Task).where(Task.ref == "5")).one()
    assert task.title == "开展安全生产大检查和隐患排查"
    assert count(engine, Task) == tasks_before


def test_blocked_bot_marks_the_person_unreachable_and_tells_admins(
    engine: Engine, api: FakeBotApi
) -> None:
    tokens = seed(engine)
    clock = SimulatedClock(REMIND_DAY)

    async def scenario() -> None:
        async with running(engine, api, clock) as bot:
            for name in ("张敏", "李强"):
                await bot.bind(name, tokens[name])
            api.inject("sendMessage", Fault.blocked(), chat_id=501)
            await bot.tick()
            await bot.tick()  # the alert queued by the failure goes out with the next pass
            alert = await bot.expect(503, "无法送达")
            assert "张敏" in alert.params["text"]

    run(scenario())
    with Session(engine) as session:
        person = session.exec(select(Person).where(Person.name == "张敏")).one()
        binding = session.exec(select(ChatBinding).where(ChatBinding.chat_id == "501")).one()
        failed = session.exec(select(Notification).where(Notification.person_id == person.id)).all()
    assert binding.unreachable_reason and "blocked" in binding.unreachable_reason
    # kept for 张敏: a new binding (the remedy the admin is told about) delivers it then
    assert [n.state for n in failed if n.kind == "reminder"] == ["waiting"]


def test_webhook_mode_checks_the_secret_token(engine: Engine, api: FakeBotApi) -> None:
    seed(engine)
    clock = SimulatedClock(REMIND_DAY)

    async def scenario() -> None:
        async with running(
            engine,
            api,
            clock,
            telegram_mode="webhook",
            telegram_webhook_url="https://bot.example.invalid/tg/hook",
            telegram_webhook_secret="s3cret-token",
        ) as bot:
            registered = api.calls_to("setWebhook")
            assert registered[0].params["url"] == "https://bot.example.invalid/tg/hook"
            assert registered[0].params["secret_token"] == "s3cret-token"
            assert not api.calls_to("getUpdates")
            web = WebServer(
                create_app(
                    Settings(web_secret="t"), engine=engine, clock=clock, frontends=[bot.frontend]
                ),
                host="127.0.0.1",
                port=0,
            )
            await web.start()
            url = f"{web.url}/tg/hook"
            update = {
                "update_id": 1,
                "message": {
                    "message_id": 1,
                    "date": 0,
                    "chat": {"id": 901, "type": "private", "first_name": "x"},
                    "from": {"id": 901, "is_bot": False, "first_name": "x"},
                    "text": "/tasks",
                    "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
                },
            }
            async with httpx.AsyncClient() as client:
                forged = await client.post(
                    url,
                    content=json.dumps(update),
                    headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"},
                )
                missing = await client.post(url, content=json.dumps(update))
                wrong_path = await client.post(
                    url + "x",
                    content=json.dumps(update),
                    headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"},
                )
                get = await client.get(
                    url, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"}
                )
                assert (forged.status_code, missing.status_code) == (403, 403)
                assert wrong_path.status_code == 404 and get.status_code == 405
                huge = await client.post(
                    url,
                    content=b"{" + b" " * (1024 * 1024) + b"}",
                    headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"},
                )
                assert huge.status_code == 413
                await asyncio.sleep(0.2)
                assert not api.calls_to("sendMessage", chat_id=901)
                good = await client.post(
                    url,
                    content=json.dumps(update),
                    headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"},
                )
                assert good.status_code == 200
                health = await client.get(f"{web.url}/healthz")
            answer = (await bot.wait("sendMessage", 901, 1))[0]
            assert "尚未绑定任何人员" in answer.params["text"]
            assert health.status_code == 200 and "telegram" in health.json()["adapters"]
            await web.stop()

    run(scenario())


def test_replies_survive_one_429_or_5xx_and_long_ones_are_split(
    engine: Engine, api: FakeBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = seed(engine)
    clock = SimulatedClock(REMIND_DAY)
    caplog.set_level(logging.DEBUG)
    # an upload with many long problems: its error report runs past 4,096 characters
    names = ", ".join(f"未登记人员{n:03d}" * 20 for n in range(40))
    bad = SCHEDULE_YAML.replace(
        "lead: [熊伟]\n    units: [能源科]\n    due: 2022-07-29",
        f"lead: [{names}]\n    units: [能源科]\n    due: 2022-07-29",
    )

    async def scenario() -> None:
        async with running(engine, api, clock) as bot:
            api.inject("sendMessage", Fault.retry_after(1), chat_id=777)
            refused = await bot.send(777, "/tasks")  # the 429'd attempt, then the retry
            assert refused.status == 429
            await bot.expect(777, "尚未绑定任何人员")
            api.inject("sendMessage", Fault.server_error(502), chat_id=778)
            await bot.send(778, "/help")
            await bot.expect(778, "尚未绑定任何人员")

            await bot.bind("李强", tokens["李强"])
            await bot.send(503, "/import")
            before = len(bot.said(503))
            api.push_document(503, bad.encode(), file_name="long.yaml")
            await bot.expect(503, "请修改后重新发送")
            parts = bot.said(503)[before:]
            assert len(parts) >= 2
            assert all(utf16_len(parse_html(p.params["text"])) <= 4096 for p in parts)

    run(scenario())
    assert api.token not in caplog.text
    assert api.token.split(":")[1] not in caplog.text


def test_slash_web_answers_with_a_sign_in_link(engine: Engine, api: FakeBotApi) -> None:
    tokens = seed(engine)
    clock = SimulatedClock(REMIND_DAY)

    async def scenario() -> None:
        async with running(engine, api, clock, web_url="https://duty.example.cn/") as bot:
            await bot.bind("张敏", tokens["张敏"])
            answer = await bot.send(CHATS["张敏"], "/web")
            assert "https://duty.example.cn/login/" in answer.params["text"]
            commands = api.calls_to("setMyCommands")
            assert any(c["command"] == "web" for c in commands[0].params["commands"])

    run(scenario())
