"""End to end through real parts: the WeCom frontend's callback route served by uvicorn, the
real adapter over HTTP against the fake WeCom server, Telegram's adapter against the fake Bot
API for the lead, the worker, and the store (SQLite and PostgreSQL).

WeCom's side is played by tests/fakes/wecom.CallbackClient: every callback signed, encrypted
and POSTed as WeCom does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.adapters.telegram import TelegramAdapter
from bot.adapters.wecom.app import WeComFrontend
from bot.clock import SimulatedClock
from bot.identities import bind
from bot.schedule.importer import import_schedule
from bot.schedule.validate import load_schedule
from bot.settings import Settings
from bot.store.db import session_scope
from bot.store.models import AuditEvent, ChatBinding, Evidence, Person, Reply
from bot.web.app import create_app
from bot.web.server import WebServer
from bot.worker import Worker
from tests.fakes.botapi import FakeBotApi
from tests.fakes.chat import IMPORTED, REMIND_DAY, SCHEDULE_YAML
from tests.fakes.wecom import (
    AES_KEY,
    AGENT_ID,
    CORP_ID,
    SECRET,
    TOKEN,
    CallbackClient,
    FakeWeCom,
    Sent,
)
from tests.test_telegram_e2e import count, occurrence

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

# 张敏 answers on WeCom (her userid declared in the schedule); her lead 熊伟 reads Telegram
WECOM_YAML = SCHEDULE_YAML.replace(
    "张敏: {title: 能源科科长}", "张敏: {title: 能源科科长, wecom: ZhangMin}"
)
LEAD_CHAT = "502"


@dataclass
class Rig:
    fake: FakeWeCom
    telegram: FakeBotApi
    frontend: WeComFrontend
    worker: Worker
    client: CallbackClient
    clock: SimulatedClock
    engine: Engine

    def cards(self, userid: str = "ZhangMin") -> list[Sent]:
        return [s for s in self.fake.received(userid) if s.card is not None]

    def texts(self, userid: str = "ZhangMin") -> list[str]:
        return [s.text for s in self.fake.received(userid)]

    def told_lead(self) -> list[str]:
        calls = self.telegram.calls_to("sendMessage", chat_id=LEAD_CHAT)
        return [str(c.params.get("text")) for c in calls if c.status == 200]


def seed(engine: Engine) -> None:
    spec = load_schedule("wecom.yaml", text=WECOM_YAML).spec
    assert spec is not None
    with session_scope(engine) as session:
        import_schedule(session, spec, now=IMPORTED, horizon_days=62)
        lead = session.exec(select(Person).where(Person.name == "熊伟")).one()
        bind(session, person=lead, platform="telegram", chat_id=LEAD_CHAT, now=IMPORTED)


@asynccontextmanager
async def running(engine: Engine, tmp_path: Path, **options: Any) -> AsyncIterator[Rig]:
    clock = SimulatedClock(REMIND_DAY)
    with FakeWeCom(members={"ZhangMin": "13800000001", "stranger": ""}) as fake, FakeBotApi() as tg:
        settings = Settings(
            wecom_corp_id=CORP_ID,
            wecom_agent_id=AGENT_ID,
            wecom_secret=SECRET,
            wecom_token=TOKEN,
            wecom_aes_key=AES_KEY,
            wecom_api_base=fake.url,
            evidence_dir=str(tmp_path / "evidence"),
            **options,
        )
        frontend = WeComFrontend(settings=settings, db=engine, clock=clock)
        frontend.adapter.limits = None  # pacing is measured elsewhere
        telegram = TelegramAdapter(tg.token, base_url=tg.base_url)
        telegram.limits = None
        worker = Worker(
            engine, {"wecom": frontend.adapter, "telegram": telegram}, clock, name="e2e"
        )
        # the callback URL is a route of the one web app, as `dutybot web` serves it
        app = create_app(settings, engine=engine, clock=clock, frontends=[frontend])
        web = WebServer(app, host="127.0.0.1", port=0)
        await web.start()
        url = f"{web.url}{settings.wecom_callback_path}"
        await frontend.start()
        try:
            yield Rig(fake, tg, frontend, worker, CallbackClient(url, now=clock.now), clock, engine)
        finally:
            await frontend.stop()
            await telegram.stop()
            await web.stop()


def test_reminder_card_click_photo_lead_told_card_updated_through_a_token_expiry(
    engine: Engine, tmp_path: Path
) -> None:
    seed(engine)

    async def scenario() -> None:
        async with running(engine, tmp_path) as rig:
            fake = rig.fake
            with Session(engine) as session:  # bound from the schedule's userid, no invite
                binding = session.exec(
                    select(ChatBinding).where(ChatBinding.platform == "wecom")
                ).one()
                assert (binding.chat_id, binding.via) == ("ZhangMin", "directory")

            fake.expire_tokens()  # WeCom drops the token early: the send refreshes, once
            await rig.worker.tick()
            [reminder] = rig.cards()
            assert len(fake.calls_to("/cgi-bin/gettoken")) == 2
            refused = [c for c in fake.calls_to("/cgi-bin/message/send") if not c.ok]
            assert [c.answer["errcode"] for c in refused] == [42001]
            card = reminder.card
            assert card is not None and card["card_type"] == "button_interaction"
            assert "党组专题研究" in card["main_title"]["title"]
            assert set(reminder.buttons()) == {
                "✅ 已完成",
                "📝 汇报进展",
                "⏳ 申请延期",
                "🙅 不是我的任务",
            }
            assert {"keyname": "剩余时间", "value": "还有 3 个工作日"} in card[
                "horizontal_content_list"
            ]

            answer = await rig.client.click("ZhangMin", fake.press(reminder, "已完成"))
            assert (answer.status_code, answer.text) == (200, "")
            ask = rig.cards()[-1]
            assert "请发送完成情况说明或佐证材料" in ask.text and "✅ 直接完成" in ask.buttons()
            assert fake.updates_of(reminder.task_id) == []  # still open: its buttons stay

            fake.expire_tokens()  # and again, on the reply path this time
            photo = fake.add_media(b"\xff\xd8\xff\xe0minutes-photo", name="minutes.jpg")
            assert (await rig.client.image("ZhangMin", photo)).status_code == 200
            done = rig.texts()[-1]
            assert "已记录完成" in done and "已通知牵头领导和配合单位" in done
            # the pressed card shows the outcome and can no longer be pressed
            [update] = fake.updates_of(reminder.task_id)
            assert update["button"] == {"replace_name": "已记录完成"}
            assert update["userids"] == ["ZhangMin"] and update["agentid"] == AGENT_ID

            await rig.worker.tick()  # the lead hears of it on Telegram
            told = [t for t in rig.told_lead() if "已办结" in t]
            assert len(told) == 1 and "张敏" in told[0]
            # nothing lost, nothing doubled across both expiries
            texts = rig.texts()
            assert sum("党组专题研究" in t and "还有 3 个工作日" in t for t in texts) == 1
            assert sum("已记录完成" in t for t in texts) == 1

    asyncio.run(scenario())
    occ = occurrence(engine, "4")
    assert occ.status == "done"
    with Session(engine) as session:
        reply = session.exec(select(Reply).where(Reply.occurrence_id == occ.id)).one()
        evidence = session.exec(select(Evidence).where(Evidence.reply_id == reply.id)).one()
    assert evidence.kind == "photo" and evidence.file_id and evidence.local_path
    # kept at once: a WeCom media id is gone after three days
    assert Path(evidence.local_path).read_bytes() == b"\xff\xd8\xff\xe0minutes-photo"


def test_tampered_replayed_stale_and_unknown_callbacks_change_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    seed(engine)

    async def scenario() -> None:
        async with running(engine, tmp_path) as rig:
            fake, client = rig.fake, rig.client
            await rig.worker.tick()
            [reminder] = rig.cards()
            replies, audits = count(engine, Reply), count(engine, AuditEvent)
            sends = len(fake.calls_to("/cgi-bin/message/send"))
            click = client.xml(
                "ZhangMin", "event", Event="template_card_event", **fake.press(reminder, "不是我的")
            )

            # a tampered signature: refused before anything is decrypted
            params, body = client.envelope(click)
            forged = dict(params, msg_signature="0" * 40)
            assert (await client.post(forged, body)).status_code == 403
            # a body changed under a genuine signature
            other = client.envelope(click)[1]
            assert (await client.post(params, other)).status_code == 403
            # an old timestamp, genuinely signed
            old = str(int(rig.clock.now().timestamp()) - 3600)
            assert (await client.send_xml(click, timestamp=old)).status_code == 403
            # an event signed for another corp's key
            wrong = CallbackClient(client.url, now=rig.clock.now, aes_key="B" * 43)
            assert (await wrong.send_xml(click)).status_code == 403
            # hostile XML: an entity bomb is refused, not expanded
            bomb = b'<!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Encrypt>&a;</Encrypt></xml>'
            assert (await client.post(params, bomb)).status_code in (400, 403)
            assert count(engine, Reply) == replies and count(engine, AuditEvent) == audits
            assert len(fake.calls_to("/cgi-bin/message/send")) == sends

            # the genuine click once, then replayed with the same timestamp and nonce
            first = await client.post(params, body)
            assert first.status_code == 200
            after_first = count(engine, AuditEvent), len(fake.calls_to("/cgi-bin/message/send"))
            assert after_first[0] > audits  # not mine was recorded
            again = await client.post(params, body)
            assert (again.status_code, again.text) == (200, "")
            assert rig.frontend.callback is not None
            assert rig.frontend.callback.refused.get("replay") == 1
            assert (count(engine, AuditEvent), len(fake.calls_to("/cgi-bin/message/send"))) == (
                after_first
            )
            # WeCom's own retry of the same event under a new nonce: handled once only
            assert (await client.send_xml(click)).status_code == 200
            assert rig.frontend.callback.refused.get("duplicate") == 1
            assert count(engine, AuditEvent) == after_first[0]

            # a member nobody is bound to: told so, learns nothing, changes nothing
            before = count(engine, AuditEvent), count(engine, Reply), count(engine, ChatBinding)
            await client.text("stranger", "已完成")
            await client.text("stranger", "绑定 not-a-real-invite-token")
            said = rig.texts("stranger")
            assert "尚未绑定任何人员" in said[0] and "测试县" not in said[0]
            assert "邀请链接无效" in said[1]
            after = count(engine, AuditEvent), count(engine, Reply), count(engine, ChatBinding)
            assert after[1:] == before[1:]
            with Session(engine) as session:  # only the refused invite was written down
                actions = session.exec(select(AuditEvent.action)).all()
            assert actions.count("invite_refused") == after[0] - before[0] == 1

    asyncio.run(scenario())
    assert occurrence(engine, "4").status == "open"


def test_url_verification_answers_the_decrypted_echo(engine: Engine, tmp_path: Path) -> None:
    seed(engine)

    async def scenario() -> None:
        async with running(engine, tmp_path) as rig:
            answer = await rig.client.verify_url("1616140317555161061")
            assert (answer.status_code, answer.text) == (200, "1616140317555161061")
            assert answer.headers["content-type"].startswith("text/plain")
            wrong = CallbackClient(rig.client.url, now=rig.clock.now, token="not-our-token")
            assert (await wrong.verify_url()).status_code == 403

    asyncio.run(scenario())


def test_invite_code_binds_a_member_not_declared_in_the_schedule(
    engine: Engine, tmp_path: Path
) -> None:
    seed(engine)
    from datetime import timedelta

    from bot.conversation.invites import create_invite

    with session_scope(engine) as session:
        admin = session.exec(select(Person).where(Person.name == "李强")).one()
        token, _ = create_invite(
            session, person=admin, now=IMPORTED, ttl=timedelta(days=30), actor="test"
        )

    async def scenario() -> None:
        async with running(engine, tmp_path) as rig:
            await rig.client.text("stranger", f"绑定 {token}")
            assert "绑定成功" in rig.texts("stranger")[-1]
            await rig.client.text("stranger", "/tasks")
            assert len(rig.texts("stranger")) == 2
            # an admin's /report: the ledger uploaded as a file, then its caption
            await rig.client.text("stranger", "/report")
            [(content, name)] = rig.fake.uploads.values()
            assert name.endswith(".xlsx") and content.startswith(b"PK")
            kinds = [s.body["msgtype"] for s in rig.fake.received("stranger")]
            assert kinds[-2:] == ["file", "markdown"]

    asyncio.run(scenario())
    with Session(engine) as session:
        binding = session.exec(select(ChatBinding).where(ChatBinding.chat_id == "stranger")).one()
    assert binding.platform == "wecom" and binding.via == "invite"


def test_dutybot_run_can_serve_the_callback_url_itself(engine: Engine, tmp_path: Path) -> None:
    seed(engine)

    async def scenario() -> None:
        async with running(engine, tmp_path, wecom_listen="127.0.0.1:0") as rig:
            host, port = rig.frontend.listening
            own = CallbackClient(f"http://{host}:{port}/wecom/callback", now=rig.clock.now)
            answer = await own.verify_url("echo-42")
            assert (answer.status_code, answer.text) == (200, "echo-42")
            await own.text("stranger", "帮助")
            assert "尚未绑定任何人员" in rig.texts("stranger")[-1]

    asyncio.run(scenario())
