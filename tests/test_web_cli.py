"""``dutybot login-link``, ``dutybot ics`` (feed URLs), ``dutybot web`` and ``dutybot run
--web``: links that work over real HTTP, real processes that serve and stop on SIGTERM, and
mistakes said in one Chinese line with an exit code."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from bot.cli import app
from bot.settings import get_settings
from tests.fakes.chat import seed
from tests.web.conftest import serve

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    for name in ("DATABASE_URL", "DUTYBOT_DATABASE_URL", "DUTYBOT_LANG", "DUTYBOT_WEB_URL"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield {"DATABASE_URL": db_url, "DUTYBOT_LANG": "zh-CN", "DUTYBOT_WEB_SECRET": "cli-tests"}
    get_settings.cache_clear()


def invoke(env: dict[str, str], *args: str) -> tuple[int, str]:
    get_settings.cache_clear()
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def _url(said: str) -> str:
    found = re.search(r"http://\S+", said)
    assert found, said
    return found.group(0)


def test_login_link_prints_a_one_time_url_that_signs_in(
    env: dict[str, str], engine: Engine
) -> None:
    seed(engine)
    for served in serve(engine):
        code, said = invoke({**env, "DUTYBOT_WEB_URL": served.url}, "login-link", "李强")
        assert code == 0 and "一次性登录链接" in said
        url = _url(said)
        assert url.startswith(served.url + "/login/")
        with httpx.Client() as client:
            form = client.get(url)
            assert form.status_code == 200
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf
            signed = client.post(url, data={"csrf": csrf.group(1)}, follow_redirects=False)
            assert signed.status_code == 303 and signed.headers["location"] == "/ledger"
            assert client.post(url, data={"csrf": csrf.group(1)}).status_code == 403  # once
    code, said = invoke(env, "login-link", "王五")
    assert code == 1 and said.strip() == (
        "没有找到名为“王五”的在册人员。请检查姓名，或先用 dutybot import 导入包含此人的清单。"
    )


def test_ics_prints_a_feed_url_and_revokes_it(env: dict[str, str], engine: Engine) -> None:
    seed(engine)
    for served in serve(engine):
        env = {**env, "DUTYBOT_WEB_URL": served.url}
        code, said = invoke(env, "ics", "张敏")
        assert code == 0 and "日历订阅地址" in said
        first = _url(said)
        with httpx.Client() as client:
            assert client.get(first).status_code == 200
            second = _url(invoke(env, "ics", "张敏")[1])
            assert client.get(first).status_code == 404  # a new URL ends the old one
            assert client.get(second).status_code == 200
            code, said = invoke(env, "ics", "张敏", "--revoke")
            assert code == 0 and "已停用" in said
            assert client.get(second).status_code == 404


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _process(
    tmp_path: Path, *args: str, port: int, extra: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DUTYBOT_", "TELEGRAM_", "DATABASE_URL"))
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'web.db'}",
        DUTYBOT_WEB_SECRET="process-tests",
        DUTYBOT_WEB_PORT=str(port),
        DUTYBOT_LOG_FORMAT="text",
    )
    env.update(extra or {})
    return subprocess.Popen(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _healthy(port: int, process: subprocess.Popen[str]) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.communicate()[1][-2000:])
        try:
            answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return {**answer.json(), "http": answer.status_code}
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the web process did not answer")


@pytest.mark.parametrize("command", [["web"], ["run", "--web", "--console"]], ids=" ".join)
def test_the_web_process_serves_and_stops_on_sigterm(tmp_path: Path, command: list[str]) -> None:
    port = _free_port()
    process = _process(tmp_path, *command, port=port)
    try:
        health = _healthy(port, process)
        assert health["http"] == 200 and health["database"]["at_head"]  # type: ignore[index]
        if "run" in command:
            assert "console" in health["adapters"]  # type: ignore[operator]
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200  # the sign-in page
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err[-2000:]
    assert f"网页控制台已启动：http://127.0.0.1:{port}" in out
    assert "Traceback" not in err


def test_a_taken_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        process = _process(tmp_path, "web", port=port)
        _out, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert f"无法在 127.0.0.1:{port} 启动网页服务" in err and "--port" in err
    assert "Traceback" not in err


def test_the_demo_keeps_its_data_for_the_console_and_says_how_to_open_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    from datetime import date

    from bot.demo import run_demo
    from bot.store.db import open_store

    kept = tmp_path / "demo.db"
    out = io.StringIO()
    run_demo("zh-CN", until=date(2022, 5, 24), out=out, keep=kept)
    said = out.getvalue()
    assert f"DATABASE_URL=sqlite:///{kept} .venv/bin/dutybot web" in said
    assert "login-link 办公室联络员" in said
    engine = open_store(f"sqlite:///{kept}")
    try:
        for served in serve(engine):
            env = {"DATABASE_URL": f"sqlite:///{kept}", "DUTYBOT_WEB_URL": served.url}
            for name in ("DATABASE_URL", "DUTYBOT_DATABASE_URL", "DUTYBOT_WEB_URL"):
                monkeypatch.delenv(name, raising=False)
            code, link = invoke(env, "login-link", "办公室联络员")
            assert code == 0
            with httpx.Client() as client:
                form = client.get(_url(link))
                csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
                assert csrf
                client.post(_url(link), data={"csrf": csrf.group(1)})
                assert "办公室联络员" in client.get(served.url + "/ledger").text
    finally:
        engine.dispose()
        get_settings.cache_clear()


def test_dutybot_web_receives_telegram_webhooks_and_answers_through_the_bot_api(
    tmp_path: Path,
) -> None:
    """The web process runs Telegram's receive side in webhook mode: an update posted to the
    webhook path (with the secret token) is answered through the Bot API."""
    import json

    from tests.fakes.botapi import FakeBotApi

    port = _free_port()
    with FakeBotApi() as api:
        env_extra = {
            "TELEGRAM_TOKEN": api.token,
            "DUTYBOT_TELEGRAM_BASE_URL": api.base_url,
            "DUTYBOT_TELEGRAM_MODE": "webhook",
            "DUTYBOT_TELEGRAM_WEBHOOK_URL": "https://duty.example.cn/telegram",
            "DUTYBOT_TELEGRAM_WEBHOOK_SECRET": "hook-secret",
        }
        process = _process(tmp_path, "web", port=port, extra=env_extra)
        try:
            _healthy(port, process)
            deadline = time.monotonic() + 30
            while not api.calls_to("setWebhook") and time.monotonic() < deadline:
                time.sleep(0.1)
            assert api.calls_to("setWebhook")[0].params["secret_token"] == "hook-secret"
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
            hook = f"http://127.0.0.1:{port}/telegram"
            headers = {"X-Telegram-Bot-Api-Secret-Token": "hook-secret"}
            answer = httpx.post(hook, content=json.dumps(update), headers=headers, timeout=10)
            while answer.status_code == 503 and time.monotonic() < deadline:  # not started yet
                time.sleep(0.2)
                answer = httpx.post(hook, content=json.dumps(update), headers=headers)
            assert answer.status_code == 200
            while not api.calls_to("sendMessage", chat_id=901) and time.monotonic() < deadline:
                time.sleep(0.1)
            [said] = api.calls_to("sendMessage", chat_id=901)
            assert "尚未绑定任何人员" in said.params["text"]
            assert not api.calls_to("getUpdates")  # the web process never polls
        finally:
            process.send_signal(signal.SIGTERM)
            _out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err[-2000:]


def test_run_without_web_says_which_urls_it_leaves_to_dutybot_web(tmp_path: Path) -> None:
    from tests.fakes.botapi import FakeBotApi

    with FakeBotApi() as api:
        extra = {
            "TELEGRAM_TOKEN": api.token,
            "DUTYBOT_TELEGRAM_BASE_URL": api.base_url,
            "DUTYBOT_TELEGRAM_MODE": "webhook",
            "DUTYBOT_TELEGRAM_WEBHOOK_URL": "https://duty.example.cn/telegram",
        }
        process = _process(tmp_path, "run", port=_free_port(), extra=extra)
        deadline = time.monotonic() + 60
        while not api.calls_to("setWebhook") and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[1][-2000:]
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err[-2000:]
    assert "注意：/telegram 由网页服务接收，本进程不接收" in err and "dutybot run --web" in err


def test_a_port_out_of_range_is_said_in_chinese(env: dict[str, str]) -> None:
    code, said = invoke(env, "web", "--port", "99999")
    assert code == 2
    assert "错误：--port 的值“99999”无效：应不大于 65535。" in said


def test_a_name_on_two_lists_asks_for_the_list(env: dict[str, str], engine: Engine) -> None:
    """李强 of two lists (two people, not bound as one): login-link and ics both say which lists
    to choose from, in one line at the command line's edge, and take --schedule."""
    from bot.schedule.importer import import_schedule
    from bot.schedule.validate import load_schedule
    from bot.store.db import session_scope
    from tests.fakes.chat import IMPORTED, SCHEDULE_YAML

    seed(engine)
    other = SCHEDULE_YAML.replace("schedule: e2e-2022", "schedule: e2e-other", 1)
    spec = load_schedule("other.yaml", text=other).spec
    assert spec is not None
    with session_scope(engine) as session:
        import_schedule(session, spec, now=IMPORTED, horizon_days=62)
    for command in (["login-link", "李强"], ["ics", "李强"]):
        code, said = invoke(env, *command)
        assert code == 1 and "李强" in said and "e2e-2022" in said and "e2e-other" in said, said
        assert len(said.strip().splitlines()) == 1
    code, said = invoke(env, "login-link", "李强", "--schedule", "e2e-other")
    assert code == 0 and "/login/" in said
