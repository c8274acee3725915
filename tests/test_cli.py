"""The command line's edge: configuration mistakes, unknown schedule ids and Click's own
messages end in one clear line in the configured language, with an exit code, no traceback."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.main import get_command
from typer.testing import CliRunner

from bot.cli import app
from bot.settings import get_settings
from bot.store.db import session_scope
from bot.texts import LANGS, _catalogue
from tests.test_reports_scenario import SCHEDULE, import_real_schedule


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A clean environment for the settings; the tests add their mistakes to it."""
    for name in ("DATABASE_URL", "DUTYBOT_DATABASE_URL", "DUTYBOT_LANG", "DUTYBOT_TELEGRAM_MODE"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield {"DATABASE_URL": db_url, "DUTYBOT_LANG": "zh-CN"}
    get_settings.cache_clear()


def invoke(env: dict[str, str], *args: str) -> tuple[int, str]:
    get_settings.cache_clear()
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def schedule_commands() -> list[list[str]]:
    """Every command with a --schedule option, with what else it needs to run."""
    needs = {
        "audit": ["-o", "x.csv"],
        "ics": ["someone", "-o", "x.ics"],
        "invite": ["someone"],
        "login-link": ["someone"],
    }
    group = get_command(app)
    found = [
        [name, *needs.get(name, [])]
        for name, command in group.commands.items()  # type: ignore[attr-defined]
        if any(p.name == "schedule" for p in command.params)
    ]
    assert {c[0] for c in found} >= {"report", "audit", "ics", "upcoming", "invite"}
    return found


@pytest.mark.parametrize("command", schedule_commands(), ids=lambda c: c[0])
def test_every_schedule_option_refuses_an_unknown_id(
    command: list[str], env: dict[str, str], engine: Engine
) -> None:
    with session_scope(engine) as session:
        import_real_schedule(session)
    code, said = invoke(env, *command, "--schedule", "nope")
    assert code == 1
    assert said.strip() == f"没有找到清单“nope”。已导入的清单：{SCHEDULE}。"


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        (
            {"DUTYBOT_LANG": "fr"},
            "配置错误：环境变量 DUTYBOT_LANG（当前为“fr”）不是可用的语言。请设为 zh-CN 或 en。",
        ),
        (
            {"DUTYBOT_TELEGRAM_MODE": "webhok"},
            "配置错误：环境变量 DUTYBOT_TELEGRAM_MODE（当前为“webhok”）无效。请设为 polling 或 webhook。",
        ),
        (
            {"DUTYBOT_TELEGRAM_MODE": "webhook"},
            "配置错误：环境变量 DUTYBOT_TELEGRAM_WEBHOOK_URL未设置",
        ),
        (
            {"DUTYBOT_TELEGRAM_MODE": "webhook", "DUTYBOT_TELEGRAM_WEBHOOK_URL": "http://x/hook"},
            "配置错误：环境变量 DUTYBOT_TELEGRAM_WEBHOOK_URL（当前为“http://x/hook”）必须以 https:// 开头",
        ),
        (
            {"DATABASE_URL": "mysql://admin:hunter2@db/x"},
            "配置错误：环境变量 DATABASE_URL（当前为“mysql://admin:***@db/x”）不是可用的数据库地址。",
        ),
        (
            {"DUTYBOT_HORIZON_DAYS": "3"},
            "DUTYBOT_HORIZON_DAYS（当前为“3”）太小。请设为不小于 7 的数。",
        ),
        ({"DUTYBOT_LOG_LEVEL": "loud"}, "DUTYBOT_LOG_LEVEL（当前为“loud”）不是可用的日志级别。"),
    ],
)
def test_configuration_mistakes_are_one_line_exit_2(
    mistake: dict[str, str], expected: str, env: dict[str, str]
) -> None:
    code, said = invoke({**env, **mistake}, "upcoming")
    assert code == 2
    assert len(said.strip().splitlines()) == 1 and expected in said
    assert "hunter2" not in said


def test_configuration_mistake_in_english(env: dict[str, str]) -> None:
    code, said = invoke({**env, "DUTYBOT_LANG": "en", "DUTYBOT_HORIZON_DAYS": "x"}, "upcoming")
    assert code == 2
    assert said.strip() == ('Configuration error: DUTYBOT_HORIZON_DAYS ("x") is not a number.')


def test_unreachable_database_is_one_line(env: dict[str, str]) -> None:
    url = "postgresql+psycopg://dutybot:s3cret@127.0.0.1:1/none"
    code, said = invoke({**env, "DATABASE_URL": url}, "upcoming")
    assert code == 2
    assert said.startswith("无法使用数据库 postgresql+psycopg://dutybot:***@127.0.0.1:1/none：")
    assert "s3cret" not in said and len(said.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["audit"], "错误：缺少选项 -o / --output。"),
        (["report", "--now", "yesterday"], "错误：--now 的值“yesterday”无效：不是有效的日期或时间"),
        (
            ["audit", "-o", "x.csv", "--since", "2022-13-01"],
            "错误：--since 的值“2022-13-01”无效：不是有效的日期，请写成 YYYY-MM-DD 格式",
        ),
        (["report", "-f", "pdf"], "错误：--format / -f 的值“pdf”无效：可选值为 xlsx、csv。"),
        (["upcoming", "--days", "many"], "错误：--days 的值“many”无效：应为整数。"),
        (["upcoming", "--bogus"], "错误：没有选项 --bogus。"),
        (["upcoming", "extra"], "错误：多余的参数：extra。"),
        (["upcoming", "--days"], "错误：选项 --days 需要一个值。"),
        (["reprot"], "错误：没有命令“reprot”。您是否想用 report？"),
        (["validate"], "错误：缺少参数 FILES"),
    ],
)
def test_click_messages_in_chinese(args: list[str], expected: str, env: dict[str, str]) -> None:
    code, said = invoke(env, *args)
    assert code == 2
    assert expected in said, said
    assert "Missing" not in said and "Invalid value" not in said and "Usage:" not in said


def test_usage_lines_in_english(env: dict[str, str]) -> None:
    code, said = invoke({**env, "DUTYBOT_LANG": "en"}, "audit")
    assert code == 2
    assert said.replace("root", "dutybot").splitlines() == [  # CliRunner names it root
        "Usage: dutybot audit [OPTIONS]",
        "Try 'dutybot audit --help' for help.",
        "Error: Missing option -o / --output.",
    ]


def test_version(env: dict[str, str]) -> None:
    code, said = invoke(env, "--version")
    assert code == 0 and said.startswith("dutybot ") and said.strip() != "dutybot"


def _helps(command: Any, path: str = "dutybot") -> Iterator[tuple[str, str]]:
    """Every help text of the command tree: commands, arguments and options (Click's own
    --help option aside), with where it is."""
    yield path, command.help or ""
    for param in command.params:
        if param.name not in ("help", "_click_default_help"):
            yield f"{path} {param.name}", getattr(param, "help", None) or ""
    for name, sub in getattr(command, "commands", {}).items():
        yield from _helps(sub, f"{path} {name}")


def test_every_help_text_is_chinese_first() -> None:
    """--help speaks the configured language (zh-CN here): every command and option says
    what it does in Chinese, not an English line with a Chinese word after a slash."""
    helps = list(_helps(get_command(app)))
    assert len(helps) > 40
    for where, text in helps:
        assert text, f"{where} has no help text"
        assert re.search(r"[\u4e00-\u9fff]", text), (where, text)
        assert not re.search(r"[A-Za-z]+ / ", text), (where, text)  # "english / 中文"


def test_help_texts_exist_in_both_languages() -> None:
    """The English catalogue has every help text the Chinese one has (DUTYBOT_LANG=en)."""
    for lang in LANGS:
        module = _catalogue(lang, "cli")
        names = {n for n in dir(module) if n.startswith("help_")}
        assert names == {n for n in dir(_catalogue("zh-CN", "cli")) if n.startswith("help_")}
        for name in names:
            assert str(getattr(module, name)()).strip(), (lang, name)
