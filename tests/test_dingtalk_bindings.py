"""``dutybot bindings``: who is bound, resolvable, unresolved on a platform; ``--resolve``
binds through the DingTalk directory (declared userid, or mobile looked up on the fake)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from bot.cli import app
from bot.schedule.importer import import_schedule
from bot.schedule.validate import load_schedule
from bot.settings import get_settings
from bot.store.db import session_scope
from bot.store.models import AuditEvent, ChatBinding, Person
from tests.fakes.chat import IMPORTED, SCHEDULE_YAML
from tests.fakes.dingtalk import CLIENT_ID, CLIENT_SECRET, ROBOT_CODE, FakeDingTalk

DECLARED = SCHEDULE_YAML.replace(
    "张敏: {title: 能源科科长}", "张敏: {title: 能源科科长, dingtalk: zhangmin}"
).replace("熊伟: {title: 副主任}", '熊伟: {title: 副主任, mobile: "13800000002"}')


@pytest.fixture
def fake() -> Iterator[FakeDingTalk]:
    with FakeDingTalk(users={"13800000002": "xiongwei"}) as server:
        yield server


@pytest.fixture
def configured(
    db_url: str, engine: Engine, fake: FakeDingTalk, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    spec = load_schedule("e2e.yaml", text=DECLARED).spec
    assert spec is not None
    with session_scope(engine) as session:
        import_schedule(session, spec, now=IMPORTED, horizon_days=62)
    env = {
        "DATABASE_URL": db_url,
        "DUTYBOT_LANG": "zh-CN",
        "DUTYBOT_DINGTALK_CLIENT_ID": CLIENT_ID,
        "DUTYBOT_DINGTALK_CLIENT_SECRET": CLIENT_SECRET,
        "DUTYBOT_DINGTALK_ROBOT_CODE": ROBOT_CODE,
        "DUTYBOT_DINGTALK_API_BASE": fake.url,
        "DUTYBOT_DINGTALK_OAPI_BASE": fake.url,
        "DUTYBOT_DINGTALK_STREAM_BASE": fake.url,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield engine
    get_settings.cache_clear()


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_listing_then_resolving_through_the_directory(configured: Engine) -> None:
    listed = run("bindings", "--schedule", "e2e-2022", "--platform", "dingtalk")
    assert "张敏：清单已登记账号，未绑定（zhangmin）" in listed
    assert "熊伟：仅有手机号，未绑定" in listed
    assert "邓清华：未登记账号" in listed
    with Session(configured) as session:
        assert session.exec(select(ChatBinding)).all() == []  # listing changes nothing

    resolved = run("bindings", "--platform", "dingtalk", "--resolve")
    assert "本次按通讯录新绑定 2 人" in resolved
    assert "张敏：已绑定（zhangmin）" in resolved and "熊伟：已绑定（xiongwei）" in resolved
    assert "dutybot invite" in resolved  # the two nobody can resolve are told the way in
    with Session(configured) as session:
        bindings = {b.chat_id: b for b in session.exec(select(ChatBinding)).all()}
        people = {p.id: p.name for p in session.exec(select(Person)).all()}
        audit = session.exec(select(AuditEvent).where(AuditEvent.action == "chat_bound")).all()
    assert set(bindings) == {"zhangmin", "xiongwei"}
    assert {b.via for b in bindings.values()} == {"directory"}
    assert {b.platform for b in bindings.values()} == {"dingtalk"}
    assert sorted(people[a.person_id] for a in audit if a.person_id) == ["张敏", "熊伟"]
    # again: nothing new
    assert "本次按通讯录新绑定 0 人" in run("bindings", "--platform", "dingtalk", "--resolve")


def test_bad_input_is_refused_clearly(configured: Engine, fake: FakeDingTalk) -> None:
    said = run("bindings", "--platform", "icq", code=2)
    assert "未知平台「icq」" in said
    said = run("bindings", "--schedule", "nope", code=1)
    assert "没有找到清单“nope”" in said
    fake.stop()  # the directory is down: said once, nothing bound
    said = run("bindings", "--platform", "dingtalk", "--resolve", code=1)
    assert "通讯录失败" in said and "Traceback" not in said
    with Session(configured) as session:
        assert session.exec(select(ChatBinding)).all() == []


def test_the_demo_prints_messages_as_dingtalk_shows_them() -> None:
    import io
    from datetime import date

    from bot.demo import run_demo

    out = io.StringIO()
    run_demo("zh-CN", until=date(2022, 5, 24), full=True, out=out, platform="dingtalk")
    shown = out.getvalue()
    assert '"msgKey": "sampleActionCard' in shown and "dtmd://dingtalkclient/sendMessage" in shown
    assert "[✅ 已完成]" in shown
    brief = io.StringIO()
    run_demo("zh-CN", until=date(2022, 5, 24), out=brief, platform="dingtalk")
    assert "msgParam" not in brief.getvalue() and "[✅ 已完成]" in brief.getvalue()
