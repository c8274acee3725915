"""WeCom pieces on their own: the crypto against WeCom's published example, callback events
as inbound events, rendering to documented limits, error mapping, the token under
concurrency (real HTTP to the fake server), and binding by declared accounts."""

from __future__ import annotations

import asyncio
import base64
import logging

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.adapters.base import DeliveryError
from bot.adapters.wecom.adapter import WeComAdapter, delivery_error, rate_limits
from bot.adapters.wecom.api import MediaTooLarge, WeComApi, WeComApiError
from bot.adapters.wecom.app import inbound
from bot.adapters.wecom.callback import Refused, parse_xml
from bot.adapters.wecom.crypto import CryptoError, WeComCrypto, signature
from bot.adapters.wecom.directory import bind_declared
from bot.adapters.wecom.render import (
    BUTTONS_LIMIT,
    CONTENT_BYTES,
    Card,
    card_of,
    render,
    split_bytes,
    text_of,
)
from bot.clock import SimulatedClock
from bot.messages import Button, Message, OutboundMessage, compose
from bot.schedule.importer import import_schedule
from bot.schedule.validate import load_schedule
from bot.store.db import session_scope
from bot.store.models import ChatBinding
from tests.conftest import local
from tests.fakes.chat import IMPORTED, SCHEDULE_YAML
from tests.fakes.wecom import AGENT_ID, CORP_ID, SECRET, FakeWeCom

# The worked example of 加解密方案说明 (https://developer.work.weixin.qq.com/document/path/90968)
EXAMPLE = {
    "token": "QDG6eK",
    "corp_id": "wx5823bf96d3bd56c7",
    "aes_key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
}


def example_crypto() -> WeComCrypto:
    return WeComCrypto(
        token=EXAMPLE["token"], aes_key=EXAMPLE["aes_key"], receive_id=EXAMPLE["corp_id"]
    )


# ---- crypto ------------------------------------------------------------------------------------


def test_the_documented_example_verifies_and_decrypts() -> None:
    crypto = example_crypto()
    args = (EXAMPLE["timestamp"], EXAMPLE["nonce"], EXAMPLE["echostr"])
    assert signature(EXAMPLE["token"], *args) == EXAMPLE["msg_signature"]
    assert crypto.verify(EXAMPLE["msg_signature"], *args)
    assert not crypto.verify("5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd4", *args)
    assert crypto.decrypt(EXAMPLE["echostr"]) == b"1616140317555161061"


def test_ciphertexts_not_ours_are_refused() -> None:
    crypto = example_crypto()
    sealed = crypto.encrypt("<xml><Content>已完成</Content></xml>".encode())
    assert crypto.decrypt(sealed) == "<xml><Content>已完成</Content></xml>".encode()
    other_corp = WeComCrypto(
        token="QDG6eK", aes_key=EXAMPLE["aes_key"], receive_id="ww-another-corp"
    )
    with pytest.raises(CryptoError, match="another corp"):
        other_corp.decrypt(sealed)
    flipped = bytearray(base64.b64decode(sealed))
    flipped[-1] ^= 0x55
    for bad in (base64.b64encode(bytes(flipped)).decode(), "not base64!", ""):
        with pytest.raises(CryptoError):
            crypto.decrypt(bad)
    for key in ("short", "!" * 43):
        with pytest.raises(ValueError):
            WeComCrypto(token="t", aes_key=key, receive_id="c")
    assert "QDG6eK" not in repr(crypto) and EXAMPLE["aes_key"] not in repr(crypto)


def test_hostile_xml_is_refused() -> None:
    with pytest.raises(Refused):
        parse_xml(b'<!DOCTYPE x [<!ENTITY a "b">]><xml><A>&a;</A></xml>')
    with pytest.raises(Refused):
        parse_xml(b"<xml><unclosed></xml>")
    with pytest.raises(Refused):
        parse_xml(b"<html/>")
    assert parse_xml("<xml><A><![CDATA[甲]]></A><B>2</B></xml>") == {"A": "甲", "B": "2"}


# ---- events → inbound ----------------------------------------------------------------------------


def test_callback_events_become_inbound_events() -> None:
    base = {"FromUserName": "ZhangMin", "CreateTime": "1", "AgentID": "1"}
    text = inbound({**base, "MsgType": "text", "Content": "进展：完成80%"})
    assert text is not None and (text.chat_id, text.text, text.command) == (
        "ZhangMin",
        "进展：完成80%",
        None,
    )
    command = inbound({**base, "MsgType": "text", "Content": "/done 12 已办"})
    assert command is not None and (command.command, command.args) == ("done", "12 已办")
    bind = inbound({**base, "MsgType": "text", "Content": "绑定  Ab3dEf9hIjKlMnOp"})
    assert bind is not None and (bind.command, bind.args) == ("start", "Ab3dEf9hIjKlMnOp")
    photo = inbound({**base, "MsgType": "image", "MediaId": "M1", "MsgId": "77", "PicUrl": "x"})
    assert photo is not None and photo.attachments[0].kind == "photo"
    assert (photo.attachments[0].file_id, photo.attachments[0].unique_id) == ("M1", "77")
    video = inbound({**base, "MsgType": "video", "MediaId": "V1", "MsgId": "78"})
    assert video is not None and video.attachments[0].mime_type == "video/mp4"
    click = inbound(
        {
            **base,
            "MsgType": "event",
            "Event": "template_card_event",
            "EventKey": "d:4:sig",
            "TaskId": "db01",
            "ResponseCode": "RC",
        }
    )
    assert click is not None and (click.callback, click.message_ref) == ("d:4:sig", "db01")
    assert inbound({**base, "MsgType": "event", "Event": "enter_agent"}) is None
    assert inbound({"MsgType": "text", "Content": "x"}) is None
    voice = inbound({**base, "MsgType": "voice", "MediaId": "A1"})
    assert voice is not None and voice.text is None and not voice.attachments


# ---- rendering ---------------------------------------------------------------------------------


def note(text: str) -> Message:
    return Message(kind="note", lang="zh-CN", body=(text,))


def reminder() -> Message:
    p = {
        "schedule": "测试县安全生产责任清单",
        "ref": "4",
        "title": "党组专题研究落实“十五条硬措施”有关工作",
        "occurrence_kind": "deadline",
        "due_date": "2022-06-10",
        "original_due": None,
        "offset": -3,
        "times_required": 1,
        "times_done": 0,
        "lead": ["熊伟"],
        "units": ["能源科"],
        "evidence": "optional",
        "assignees": ["张敏"],
        "occurrence_id": 9,
        "level": "yellow",
    }
    return compose("reminder", [p], person="张敏", lang="zh-CN")


def sign(button: Button) -> str:
    return f"{button.action}:{button.ref}:mac"


def test_a_reminder_is_one_button_card_within_the_documented_limits() -> None:
    card, rows = card_of(reminder())
    out = render(card, rows, encode=sign, lang="zh-CN")
    [body] = out.bodies
    card = body["template_card"]
    assert body["msgtype"] == "template_card" and card["task_id"] == out.task_ids[0]
    assert card["source"] == {"desc": "🟡 黄色督办", "desc_color": 1}
    assert card["main_title"]["title"] == "4. 党组专题研究落实“十五条硬措施”有关工作"
    assert [b["key"] for b in card["button_list"]] == [
        "done:9:mac",
        "progress:9:mac",
        "extend:9:mac",
        "not_mine:9:mac",
    ]
    assert [f["keyname"] for f in card["horizontal_content_list"]] == [
        "完成时限",
        "剩余时间",
        "牵头领导",
        "牵头单位",
    ]
    assert len(card["main_title"]["title"]) <= 36 and len(card["sub_title_text"]) <= 160


def test_what_does_not_fit_a_card_goes_as_markdown_then_cards_of_six_buttons() -> None:
    message = Message(
        kind="digest",
        lang="zh-CN",
        header="📋 督办汇总｜清单",
        body=tuple(f"🔴 {n}. 某项任务逾期" * 5 for n in range(60)),
        actions=tuple((Button(f"📣 催办 {n}", "nudge", n),) for n in range(8)),
    )
    card, rows = card_of(message)
    out = render(card, rows, encode=sign, lang="zh-CN")
    kinds = [b["msgtype"] for b in out.bodies]
    markdown = [b["markdown"]["content"] for b in out.bodies if b["msgtype"] == "markdown"]
    assert kinds[: len(markdown)] == ["markdown"] * len(markdown) and len(markdown) >= 2
    assert all(len(part.encode()) <= CONTENT_BYTES for part in markdown)
    assert markdown[0].startswith("**📋 督办汇总｜清单**")
    cards = [b["template_card"] for b in out.bodies if b["msgtype"] == "template_card"]
    assert [len(c["button_list"]) for c in cards] == [BUTTONS_LIMIT, 2]
    assert cards[0]["sub_title_text"] == "请选择操作（第 1/2 组）"
    assert len(set(out.task_ids)) == 2


def test_split_bytes_never_cuts_a_character() -> None:
    text = "安" * 3000 + "\n" + "全" * 10
    parts = split_bytes(text, 2048)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")
    assert all(len(p.encode()) <= 2048 for p in parts)
    assert text_of({"msgtype": "markdown", "markdown": {"content": "x"}}) == "x"
    card, rows = card_of(note("plain line only"))
    assert card == Card(
        "", "", (), ("plain line only",), None, "plain line only", "plain line only"
    )
    assert rows == ()


# ---- errors and limits -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "gone", "permanent", "retry_after"),
    [
        (81013, True, True, None),  # outside the visible range: that binding only
        (60111, True, True, None),
        (45009, False, False, 60.0),
        (-1, False, False, None),
        (45002, False, True, None),
        (60020, False, False, None),  # 企业可信IP not set: ours to fix, not the member's
        (12345, False, False, None),
    ],
)
def test_errcodes_map_onto_the_delivery_contract(
    code: int, gone: bool, permanent: bool, retry_after: float | None
) -> None:
    error = delivery_error(WeComApiError(code, "x"))
    assert (error.recipient_gone, error.permanent, error.retry_after) == (
        gone,
        permanent,
        retry_after,
    )


def test_pacing_follows_the_documented_per_member_and_per_app_limits() -> None:
    limits = rate_limits(500)
    assert limits.per_chat == ((30, 60.0), (1000, 3600.0))
    assert limits.overall == ((100_000, 86_400.0),)  # 500 accounts × 200 a day


def test_concurrent_sends_after_an_expiry_fetch_one_token_and_lose_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    members = {f"m{n}": "" for n in range(20)}
    tokens: list[str] = []

    async def scenario(fake: FakeWeCom) -> None:
        api = WeComApi(corp_id=CORP_ID, secret=SECRET, base_url=fake.url)
        adapter = WeComAdapter(api, agent_id=AGENT_ID, clock=SimulatedClock(IMPORTED), encode=sign)
        await adapter.start()
        fake.expire_tokens()
        await asyncio.gather(
            *(adapter.send(OutboundMessage(u, note(f"通知 {u}"))) for u in members)
        )
        await adapter.stop()
        assert len(fake.calls_to("/cgi-bin/gettoken")) == 2  # one refresh for twenty sends
        assert sorted(s.userid for s in fake.sent) == sorted(members)
        tokens.extend(c.params["access_token"] for c in fake.calls_to("/cgi-bin/message/send"))

    with FakeWeCom(members=members) as fake:
        asyncio.run(scenario(fake))
    assert "cgi-bin/gettoken" in caplog.text  # httpx did log the requests...
    assert SECRET not in caplog.text  # ...without the secret or any token
    assert tokens and not any(token in caplog.text for token in set(tokens))


def test_a_member_listed_invalid_and_a_wrong_secret() -> None:
    async def scenario(fake: FakeWeCom) -> None:
        api = WeComApi(corp_id=CORP_ID, secret=SECRET, base_url=fake.url)
        adapter = WeComAdapter(api, agent_id=AGENT_ID, clock=SimulatedClock(IMPORTED), encode=sign)
        with pytest.raises(DeliveryError) as gone:
            await adapter.send(OutboundMessage("nobody", note("通知")))
        assert gone.value.recipient_gone
        wrong = WeComApi(corp_id=CORP_ID, secret="wrong-secret", base_url=fake.url)
        bad = WeComAdapter(wrong, agent_id=AGENT_ID, clock=SimulatedClock(IMPORTED), encode=sign)
        with pytest.raises(DeliveryError) as config:
            await bad.send(OutboundMessage("m1", note("通知")))
        assert not config.value.permanent and "40001" in config.value.reason
        assert "wrong-secret" not in config.value.reason
        big = fake.add_media(b"x" * 5000)
        with pytest.raises(MediaTooLarge):
            await api.download(big, max_bytes=1000)
        assert (await api.download(big, max_bytes=10_000)).content == b"x" * 5000
        with pytest.raises(WeComApiError) as expired:
            await api.download("MEDIA-gone", max_bytes=10_000)
        assert expired.value.errcode == 40007
        await api.close()
        await wrong.close()

    with FakeWeCom(members={"m1": ""}) as fake:
        asyncio.run(scenario(fake))


# ---- binding by declared accounts ------------------------------------------------------------


def test_declared_userids_and_mobiles_bind_without_invites(engine: Engine) -> None:
    text = (
        SCHEDULE_YAML.replace("张敏: {title: 能源科科长}", "张敏: {title: 能源科科长, wecom: zm}")
        .replace("熊伟: {title: 副主任}", "熊伟: {title: 副主任, mobile: '13900000002'}")
        .replace("李强: {title: 办公室主任}", "李强: {title: 办公室主任, wecom: left-the-corp}")
    )
    spec = load_schedule("wecom.yaml", text=text).spec
    assert spec is not None
    with session_scope(engine) as session:
        import_schedule(session, spec, now=IMPORTED, horizon_days=62)

    async def scenario(fake: FakeWeCom) -> list[tuple[str, str | None, str | None]]:
        api = WeComApi(corp_id=CORP_ID, secret=SECRET, base_url=fake.url)
        found = await bind_declared(db=engine, api=api, now=local(2022, 6, 1, 9, 0))
        again = await bind_declared(db=engine, api=api, now=local(2022, 6, 1, 9, 0))
        await api.close()
        assert [r.name for r in again] == ["李强"]  # the bound are not looked up again
        return [(r.name, r.userid, r.problem) for r in found]

    with FakeWeCom(members={"zm": "", "xw": "13900000002"}) as fake:
        found = asyncio.run(scenario(fake))
    assert sorted(found) == [
        ("张敏", "zm", None),
        ("李强", None, "not_found"),
        ("熊伟", "xw", None),
    ]
    with Session(engine) as session:
        bound = session.exec(select(ChatBinding).where(ChatBinding.platform == "wecom")).all()
    assert sorted((b.chat_id, b.via) for b in bound) == [("xw", "directory"), ("zm", "directory")]


# ---- the demo --------------------------------------------------------------------------------


def test_the_demo_prints_messages_as_wecom_shows_them() -> None:
    import io
    from datetime import date

    from typer.testing import CliRunner

    from bot.cli import app
    from bot.demo import run_demo

    out = io.StringIO()
    run_demo("zh-CN", until=date(2022, 5, 24), full=True, out=out, platform="wecom")
    shown = out.getvalue()
    assert '"card_type": "button_interaction"' in shown and '"msgtype": "markdown"' in shown
    assert "[✅ 已完成]  [📝 汇报进展]" in shown
    refused = CliRunner().invoke(app, ["demo", "--platform", "nowhere"])
    assert refused.exit_code == 2 and "nowhere" in refused.output
