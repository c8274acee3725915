"""What every part of the conversation shares: settings, the store, and small helpers.

:class:`~bot.conversation.service.Conversation` is built on this base and on the admin
actions of :mod:`bot.conversation.admin`, so each file stays about one thing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine as DbEngine
from sqlmodel import Session

from bot import replies as actions
from bot.clock import Clock
from bot.conversation import queries
from bot.conversation import state as flows
from bot.conversation.events import FileSource, Inbound, Outcome, Rows
from bot.messages import ASSIGNEE_ACTIONS, button
from bot.signing import Signer
from bot.store.models import ChatState, Person
from bot.texts import DEFAULT_LANG, LANGS, phrase

DONE, PROGRESS, EXTEND, IMPORT = "done", "progress", "extend", "import"


@dataclass(frozen=True)
class ChatConfig:
    """What the conversation needs from the settings."""

    lang: str = DEFAULT_LANG
    invite_ttl: timedelta = timedelta(hours=72)
    state_ttl: timedelta = timedelta(hours=24)
    evidence_dir: Path | None = None
    evidence_max_bytes: int = 20 * 1024 * 1024
    horizon_days: int = 62
    list_limit: int = 20
    web_url: str = "http://127.0.0.1:8080"  # the console's public base URL (sign-in links)
    signin_minutes: float = 15.0

    @classmethod
    def from_settings(cls, settings: Any) -> ChatConfig:
        """The conversation's part of :class:`bot.settings.Settings` (any platform)."""
        return cls(
            lang=settings.lang,
            invite_ttl=timedelta(hours=settings.invite_ttl_hours),
            state_ttl=timedelta(hours=settings.conversation_ttl_hours),
            evidence_dir=Path(settings.evidence_dir) if settings.evidence_dir else None,
            evidence_max_bytes=settings.evidence_max_bytes,
            horizon_days=settings.horizon_days,
            web_url=settings.web_url,
            signin_minutes=settings.web_signin_minutes,
        )


def safe_name(name: str) -> str:
    """A file name that is safe on any disk: no folders, no odd characters."""
    stem = Path(name).name
    cleaned = re.sub(r"[^\w.\-]+", "_", stem, flags=re.UNICODE).strip("._")
    return cleaned[:80] or "file"


class ConversationBase:
    """The store, the clock, the signer and the platform's file source, and the helpers
    every handler uses; no handler lives here."""

    def __init__(
        self,
        *,
        db: DbEngine,
        clock: Clock,
        signer: Signer,
        platform: str,
        config: ChatConfig | None = None,
        files: FileSource | None = None,
        invite_link: Callable[[str], str] | None = None,
    ) -> None:
        self.db, self.clock, self.signer, self.platform = db, clock, signer, platform
        self.config = config or ChatConfig()
        self.files = files
        self.invite_link = invite_link

    # ---- helpers -------------------------------------------------------------------------

    def _via(self, event: Inbound) -> actions.Via:
        """Audit: this came through chat, on this platform, answering this message."""
        return actions.Via("chat", self.platform, event.message_ref or event.reply_to)

    def _lang(self, person: Person | None, event: Inbound | None = None) -> str:
        if person is not None and person.lang in LANGS:
            return person.lang
        if person is None and event is not None and (event.language or "").startswith("en"):
            return "en"
        return self.config.lang

    def _today(self, session: Session, person: Person) -> date:
        _, st = queries.schedule_clock(session, person.schedule_id)
        return st.local_date(self.clock.now())

    def _refusal(self, code: str, lang: str) -> str:
        return phrase("chat_refusals", code, lang)

    def _refused(self, code: str, lang: str, *, button: bool) -> Outcome:
        if button:
            return Outcome(toast=self._refusal(code, lang), alert=True)
        return Outcome().say("chat_refusal", lang, code=code)

    def _answer_buttons(self, occurrence_id: int, lang: str) -> Rows:
        return tuple(
            tuple(button(a, occurrence_id, lang) for a in line) for line in ASSIGNEE_ACTIONS
        )

    def _check(self, session: Session, occurrence_id: int, person: Person) -> None:
        """May this person answer this occurrence now?  ReplyRefused if not."""
        assert person.id is not None
        actions.check_can_answer(session, occurrence_id, person.id)

    def _view(self, session: Session, occurrence_id: int, person: Person) -> dict[str, Any]:
        found = queries.occurrence_view(session, occurrence_id, self._today(session, person))
        assert found is not None
        return found

    def _begin(
        self,
        session: Session,
        event: Inbound,
        person: Person,
        flow: str,
        step: str,
        occurrence_id: int | None = None,
        **data: Any,
    ) -> ChatState:
        assert person.id is not None
        return flows.begin(
            session,
            platform=self.platform,
            chat_id=event.chat_id,
            person_id=person.id,
            flow=flow,
            step=step,
            now=self.clock.now(),
            ttl=self.config.state_ttl,
            occurrence_id=occurrence_id,
            data=data,
        )
