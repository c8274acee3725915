"""Telegram's deep links, without importing the chat library (the web and CLI show them).

``https://t.me/<bot>?start=<payload>`` opens the bot and sends ``/start <payload>`` when the
user taps Start (https://core.telegram.org/bots/features#deep-linking: the payload is up to
64 characters of A-Z, a-z, 0-9, _ and -, which invite tokens are).
"""

from __future__ import annotations


def start_link(bot_username: str, token: str) -> str:
    """The invite link a person opens to bind their Telegram chat."""
    return f"https://t.me/{bot_username.lstrip('@')}?start={token}"
