"""What only admins do in chat: invite people, export the ledger, import a schedule.

An uploaded schedule is validated, rehearsed (imported in a transaction that is rolled
back, to show the diff), and applied only when the admin confirms; a file that fails
validation changes nothing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlmodel import Session

from bot.conversation import invites, queries
from bot.conversation import state as flows
from bot.conversation.base import IMPORT, ConversationBase, safe_name
from bot.conversation.events import Attachment, Inbound, Outcome, Say
from bot.messages import Document, button
from bot.replies import ReplyRefused
from bot.store.db import session_scope
from bot.store.models import Person, Schedule
from bot.texts import phrase, render

SCHEDULE_SUFFIXES = (".yaml", ".yml")
MAX_SCHEDULE_BYTES = 2 * 1024 * 1024
MAX_PROBLEMS_SHOWN = 30


def is_schedule_file(attachment: Attachment) -> bool:
    name = (attachment.file_name or "").lower()
    return attachment.kind == "document" and name.endswith(SCHEDULE_SUFFIXES)


class AdminActions(ConversationBase):
    """/invite, /report and /import; the caller has checked that the person is an admin
    (``_import_file`` and ``_import_decision`` check again: they are reached by uploads and
    buttons too)."""

    def _invite_command(self, session: Session, admin: Person, name: str) -> Outcome:
        lang = self._lang(admin)
        if not name:
            return Outcome().say("chat_invite_usage", lang)
        invited = queries.person_by_name(session, admin.schedule_id, name)
        if invited is None:
            return Outcome().say("chat_invite_unknown", lang, name=name)
        if self.invite_link is None:
            return self._refused("no_invite_link", lang, button=False)
        token, invite = invites.create_invite(
            session,
            person=invited,
            now=self.clock.now(),
            ttl=self.config.invite_ttl,
            actor=f"person:{admin.id}",
        )
        _, st = queries.schedule_clock(session, admin.schedule_id)
        return Outcome().say(
            "chat_invite_link",
            lang,
            name=invited.name,
            link=self.invite_link(token),
            expires=invite.expires_at.astimezone(st.tz).strftime("%Y-%m-%d %H:%M"),
        )

    def _report(self, session: Session, admin: Person) -> Outcome:
        from bot.reports.ledger import build_ledger
        from bot.reports.records import load_records
        from bot.reports.writers import write_ledger_xlsx

        lang = self._lang(admin)
        now = self.clock.now()
        records = load_records(session, admin.schedule_id)
        ledger = build_ledger(records, now=now, lang=lang)
        _, st = queries.schedule_clock(session, admin.schedule_id)
        name = phrase(
            "report",
            "default_file",
            lang,
            schedule=admin.schedule_id,
            day=now.astimezone(st.tz),
            ext="xlsx",
        )
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "ledger.xlsx"
            write_ledger_xlsx(ledger, path)
            content = path.read_bytes()
        caption = Say(
            "chat_report_caption",
            lang,
            {"tasks": ledger.task_count},
            document=Document(name, content),
        )
        return Outcome(says=[caption])

    # ---- schedule import ---------------------------------------------------------------------

    def _import_file(
        self, event: Inbound, person_id: int, document: Attachment, fetched: dict[str, bytes]
    ) -> Outcome:
        """Validate an uploaded schedule and show what importing it would change."""
        from bot.schedule.importer import import_schedule
        from bot.schedule.validate import load_schedule

        with session_scope(self.db) as session:
            person = session.get(Person, person_id)
            assert person is not None
            lang = self._lang(person)
            if not person.admin:
                return self._refused("not_admin", lang, button=False)
        name = safe_name(document.file_name or "schedule.yaml")
        content = fetched.get(document.file_id)
        if content is None:
            return Outcome().say("chat_import_unreadable", lang, name=name)
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            return self._import_failed(
                event, lang, name, [phrase("validation", "not_utf8", lang)], 1
            )
        loaded = load_schedule(name, lang=lang, text=text)
        if not loaded.ok or loaded.spec is None:
            return self._import_failed(
                event, lang, name, [str(p) for p in loaded.problems], len(loaded.errors)
            )
        spec = loaded.spec
        with session_scope(self.db) as session:
            if spec.schedule != person.schedule_id and session.get(Schedule, spec.schedule):
                flows.clear(session, self.platform, event.chat_id)
                return self._refused("import_other_schedule", lang, button=False)
        now = self.clock.now()
        with Session(self.db) as dry:  # a rehearsal: import, look at the diff, roll back
            try:
                diff = import_schedule(
                    dry,
                    spec,
                    now=now,
                    horizon_days=self.config.horizon_days,
                    actor=f"person:{person_id}",
                    source_file=name,
                )
            finally:
                dry.rollback()
        with session_scope(self.db) as session:
            person = session.get(Person, person_id)
            assert person is not None
            if diff.unchanged:
                flows.clear(session, self.platform, event.chat_id)
                return Outcome().say(
                    "chat_import_unchanged", lang, diff_text=render("import_diff", lang, diff=diff)
                )
            self._begin(session, event, person, IMPORT, "await_confirm", text=text, name=name)
            keys = (
                button("import_ok", person_id, lang),
                button("import_no", person_id, lang),
            )
            return Outcome().say(
                "chat_import_preview",
                lang,
                actions=(keys,),
                diff_text=render("import_diff", lang, diff=diff),
                warnings=[str(p) for p in loaded.warnings][:MAX_PROBLEMS_SHOWN],
            )

    def _import_failed(
        self, event: Inbound, lang: str, name: str, problems: list[str], errors: int
    ) -> Outcome:
        with session_scope(self.db) as session:
            flows.clear(session, self.platform, event.chat_id)
        return Outcome().say(
            "chat_import_errors",
            lang,
            name=name,
            count=errors,
            problems=problems[:MAX_PROBLEMS_SHOWN],
            more=max(len(problems) - MAX_PROBLEMS_SHOWN, 0),
        )

    def _import_decision(
        self, session: Session, person: Person, event: Inbound, *, confirm: bool
    ) -> Outcome:
        from bot.schedule.importer import import_schedule
        from bot.schedule.validate import load_schedule

        lang = self._lang(person)
        here = [event.message_ref] if event.message_ref else []
        if not person.admin:
            raise ReplyRefused("not_admin")
        state = flows.current(session, self.platform, event.chat_id, self.clock.now())
        if state is None or state.flow != IMPORT or state.step != "await_confirm":
            return Outcome(toast=self._refusal("no_import", lang), alert=True, clear_buttons=here)
        data = state.data or {}
        flows.clear(session, self.platform, event.chat_id)
        if not confirm:
            outcome = Outcome(toast=phrase("chat_toasts", "cancelled", lang), clear_buttons=here)
            return outcome.say("chat_import_cancelled", lang)
        loaded = load_schedule(str(data.get("name")), lang=lang, text=str(data.get("text")))
        if loaded.spec is None:  # validated a moment ago; only a code change could get here
            return self._refused("no_import", lang, button=True)
        diff = import_schedule(
            session,
            loaded.spec,
            now=self.clock.now(),
            horizon_days=self.config.horizon_days,
            actor=f"person:{person.id}",
            source_file=str(data.get("name")),
        )
        return Outcome(toast=phrase("chat_toasts", "saved", lang), clear_buttons=here).say(
            "chat_import_applied", lang, diff_text=render("import_diff", lang, diff=diff)
        )
