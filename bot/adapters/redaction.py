"""Keeping credentials out of log records: one filter shared by every platform.

httpx logs each request URL at INFO, and several platforms put a credential in the URL (the
Telegram bot token in the path, WeCom's access_token and corpsecret in the query).  A secret
registered here is replaced by ``<token>`` in every record of the named loggers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import quote


class RedactSecrets(logging.Filter):
    """Rewrites a record whose message contains a known secret."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to fix
            return True
        redacted = message
        for secret in self.secrets:
            redacted = redacted.replace(secret, "<token>")
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


REDACT = RedactSecrets()


def redact_in_logs(secret: str, loggers: Iterable[str]) -> None:
    """From now on, ``secret`` (and its URL-quoted form) never reaches these loggers' output."""
    if not secret:
        return
    REDACT.secrets.add(secret)
    REDACT.secrets.add(quote(secret, safe=""))  # file downloads quote it: 123%3AABC
    for name in loggers:
        logger = logging.getLogger(name)
        if REDACT not in logger.filters:
            logger.addFilter(REDACT)


def forget(secret: str) -> None:
    """A rotated secret that can no longer be used need not be searched for any more."""
    REDACT.secrets.discard(secret)
    REDACT.secrets.discard(quote(secret, safe=""))
