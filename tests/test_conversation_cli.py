"""`dutybot invite NAME`, registered on a typer app as bot.cli will do."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import typer
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from bot.conversation.cli import register
from bot.conversation.invites import redeem, token_hash
from bot.settings import get_settings
from bot.store.db import session_scope
from bot.store.models import Invite, Person, Schedule
from tests.conftest import local
from tests.fakes.botapi import FakeBotApi
from tests.fakes.chat import seed

ENV = (
    "DATABASE_URL",
    "DUTYBOT_DATABASE_URL",
    "TELEGRAM_TOKEN",
    "DUTYBOT_TELEGRAM_TOKEN",
    "DUTYBOT_TELEGRAM_BOT_USERNAME",
    "DUTYBOT_TELEGRAM_BASE_URL",
)


@pytest.fixture
def app(db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    seed(engine)
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("DUTYBOT_LANG", "zh-CN")
    get_settings.cache_clear()
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command keeps `invite` a subcommand
    yield app
    get_settings.cache_clear()


def run(app: typer.Typer, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def token_of(output: str) -> str:
    match = re.search(r"https://t\.me/(\w+)\?start=([\w-]+)", output)
    assert match, output
    return match.group(2)


def test_prints_a_one_time_link(
    app: typer.Typer, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUTYBOT_TELEGRAM_BOT_USERNAME", "@fengdu_duty_bot")
    get_settings.cache_clear()
    said = run(app, "invite", "张敏")
    assert "https://t.me/fengdu_duty_bot?start=" in said and "仅可使用一次" in said
    token = token_of(said)
    with Session(engine) as session:
        assert session.exec(select(Invite).where(Invite.token_hash == token_hash(token))).one()
    with session_scope(engine) as session:
        # the CLI read the wall clock: redeem as of the moment it made the invite
        invite = session.exec(select(Invite).where(Invite.token_hash == token_hash(token))).one()
        person = redeem(
            session, token=token, platform="telegram", chat_id="501", now=invite.created_at
        )
    assert person.name == "张敏"


def test_asks_getme_when_no_username_is_configured(
    app: typer.Typer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeBotApi(bot_username="getme_named_bot") as api:
        monkeypatch.setenv("TELEGRAM_TOKEN", api.token)
        monkeypatch.setenv("DUTYBOT_TELEGRAM_BASE_URL", api.base_url)
        get_settings.cache_clear()
        said = run(app, "invite", "熊伟")
        assert api.calls_to("getMe")
    assert "https://t.me/getme_named_bot?start=" in said
    assert api.token not in said


def test_unknown_ambiguous_and_unconfigured(
    app: typer.Typer, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "无法确定机器人用户名" in run(app, "invite", "张敏", code=2)
    monkeypatch.setenv("DUTYBOT_TELEGRAM_BOT_USERNAME", "duty_bot")
    get_settings.cache_clear()
    assert "没有找到人员“王五”" in run(app, "invite", "王五", code=1)
    with session_scope(engine) as session:
        session.add(
            Schedule(
                id="other-2022",
                title="另一份清单",
                content_hash="x",
                planned_from=local(2022, 6, 1, 0, 0).date(),
                imported_at=local(2022, 6, 1, 9, 0),
            )
        )
        session.flush()
        session.add(Person(schedule_id="other-2022", name="张敏"))
    assert "出现在多个清单中" in run(app, "invite", "张敏", code=1)
    assert "e2e-2022" in run(app, "invite", "张敏", "--schedule", "e2e-2022")
    with Session(engine) as session:
        assert len(session.exec(select(Invite)).all()) == 1 + 4  # seed made one per person
