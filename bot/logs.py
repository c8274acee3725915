"""Structured logging, set up once by the command line.

JSON lines when stderr is not a terminal (for journald, Docker, a log shipper), readable lines
on a terminal; the level comes from ``DUTYBOT_LOG_LEVEL``.  Every configured secret (the bot
token, the webhook and callback secrets, the database password) is replaced by ``<secret>``
in whatever a handler writes, tracebacks included: the filter sits on the handler, so it
covers every logger, not only the ones bot.adapters.telegram filters for its token.

:func:`log_event` is how code reports a fact with fields, e.g. one line per send outcome
(``log_event(log, "send_outcome", delivery=…, state="sent")``) or a tick summary.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import quote, unquote, urlsplit

from bot.settings import Settings

_FIELDS = "dutybot_fields"  # where log_event keeps its fields on the record
_HANDLER_NAME = "dutybot"
REDACTED = "<secret>"


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """One structured line: ``event`` names what happened, ``fields`` are its facts."""
    logger.log(level, event, extra={_FIELDS: fields})


def secrets_of(settings: Settings) -> list[str]:
    """The configured values that must never be written to a log."""
    from bot.settings import SECRET_FIELDS

    values = [getattr(settings, name, None) for name in SECRET_FIELDS]
    found = [s.get_secret_value() for s in values if s is not None and s.get_secret_value()]
    # the URL's password, read with urllib: SQLAlchemy's make_url costs most of a second to
    # import, on every command (its URLs are RFC 1738 ones, user:password@host)
    password = urlsplit(settings.database_url).password
    if password:
        found.append(unquote(password))
    # URLs carry them quoted (123%3AABC)
    return sorted({*found, *(quote(s, safe="") for s in found)}, key=len, reverse=True)


class _Redacting(logging.Formatter):
    """Formats, then replaces every secret in the finished text."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text


class JsonFormatter(_Redacting):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            **getattr(record, _FIELDS, {}),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return self.redact(json.dumps(line, ensure_ascii=False, default=str))


class TextFormatter(_Redacting):
    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        fields = " ".join(f"{k}={v}" for k, v in getattr(record, _FIELDS, {}).items())
        text = f"{when} {record.levelname:<7} {record.name}: {record.getMessage()}"
        text = f"{text} {fields}" if fields else text
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return self.redact(text)


def setup_logging(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """Install the one dutybot handler on the root logger (again: replaced, not added)."""
    stream = stream or sys.stderr
    fmt = settings.log_format
    if fmt == "auto":
        fmt = "text" if getattr(stream, "isatty", lambda: False)() else "json"
    secrets = secrets_of(settings)
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter(secrets) if fmt == "json" else TextFormatter(secrets))
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # every command upgrades the schema at start: Alembic's per-run chatter is not news
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))
    return handler
