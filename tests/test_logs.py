"""Structured logs: JSON lines that parse, readable lines for people, and no secret ever."""

from __future__ import annotations

import io
import json
import logging

from bot.logs import log_event, setup_logging
from bot.settings import Settings

TOKEN = "123456:AAEhBP0av28rt-secret"


def settings(**kwargs: object) -> Settings:
    return Settings(
        telegram_token=TOKEN,
        callback_secret="cb-signing-key",
        database_url="postgresql+psycopg://dutybot:pg-pass-9@db/dutybot",
        **kwargs,  # type: ignore[arg-type]
    )


def test_json_lines_parse_and_carry_fields() -> None:
    out = io.StringIO()
    handler = setup_logging(settings(log_format="json", log_level="DEBUG"), out)
    try:
        log = logging.getLogger("dutybot.outbox")
        log_event(log, "send_outcome", delivery=42, state="sent", chat="张敏")
        log_event(log, "tick", due=3, sent=2, failed=1)
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
    finally:
        logging.getLogger().removeHandler(handler)
    assert lines[0]["event"] == "send_outcome" and lines[0]["delivery"] == 42
    assert lines[0]["chat"] == "张敏" and lines[0]["level"] == "info"
    assert lines[1] == {**lines[1], "event": "tick", "due": 3, "sent": 2, "failed": 1}


def test_no_secret_reaches_the_log_from_any_logger() -> None:
    out = io.StringIO()
    handler = setup_logging(settings(log_format="json"), out)
    try:
        logging.getLogger("httpx").info("POST https://api.telegram.org/bot%s/sendMessage", TOKEN)
        logging.getLogger("anything").warning("quoted %s", "123456%3AAAEhBP0av28rt-secret")
        try:
            raise RuntimeError("connect failed for pg-pass-9 and cb-signing-key")
        except RuntimeError:
            logging.getLogger("dutybot.worker").exception("tick failed")
        text = out.getvalue()
    finally:
        logging.getLogger().removeHandler(handler)
    for secret in (TOKEN, "123456%3AAAEhBP0av28rt-secret", "pg-pass-9", "cb-signing-key"):
        assert secret not in text
    assert text.count("<secret>") >= 4
    assert all(json.loads(line) for line in text.splitlines())


def test_text_on_a_terminal_and_the_level() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    handler = setup_logging(settings(log_level="warning"), out)
    try:
        log = logging.getLogger("dutybot.runtime")
        log.info("not shown")
        log_event(log, "db_down", logging.WARNING, retry_in=5)
    finally:
        logging.getLogger().removeHandler(handler)
    [line] = out.getvalue().splitlines()
    assert "WARNING dutybot.runtime: db_down retry_in=5" in line
