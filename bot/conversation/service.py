"""The conversation: normalised inbound events in, actions on the store, replies out.

Platform-independent (no chat library is imported here).  Every event is authorised
against the person its chat is bound to: a button's data is verified (HMAC) before it
is read, and bot.replies checks that the person may act on that occurrence.  A chat
nobody is bound to gets a polite refusal and learns nothing about any schedule.

Store work happens in short transactions that never span an ``await`` (fetching a file
from the platform happens between them): on SQLite a write lock held across an await
would stall the worker sharing the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from bot import replies as actions
from bot.conversation import invites, queries
from bot.conversation import state as flows
from bot.conversation.admin import MAX_SCHEDULE_BYTES, AdminActions, is_schedule_file
from bot.conversation.base import DONE, EXTEND, IMPORT, PROGRESS, ChatConfig, safe_name
from bot.conversation.dates import find_date, normalise
from bot.conversation.events import Attachment, Inbound, Outcome
from bot.digest import ref_key
from bot.engine import effective_due
from bot.escalation import BLUE, RED
from bot.identities import announce_removed, unbind
from bot.messages import button
from bot.replies import EvidenceIn, ReplyRefused
from bot.signing import BadSignature
from bot.store.db import session_scope
from bot.store.models import (
    AuditEvent,
    ChatBinding,
    ChatState,
    Evidence,
    Occurrence,
    Person,
    Schedule,
)
from bot.texts import LANGS, phrase

log = logging.getLogger("dutybot.conversation")

__all__ = ["ChatConfig", "Conversation"]


_PUNCT = r"\s*[，,。.:：;；!！、\-—]*\s*"
_INTENTS: list[tuple[str, re.Pattern[str]]] = [
    ("not_mine", re.compile(r"^(?:不是我的任务|不是我的|非本人任务|not\s+mine)" + _PUNCT, re.I)),
    (
        "done",
        re.compile(
            r"^(?:已经完成|已完成|完成了|已办结|办结了|已办理|done|completed)" + _PUNCT, re.I
        ),
    ),
    ("progress", re.compile(r"^(?:汇报进展|进展情况|进展|进度|progress)" + _PUNCT, re.I)),
    (
        "extend",
        re.compile(r"^(?:申请延期|延期|extension|extend)" + _PUNCT + r"(?:到|至|to)?\s*", re.I),
    ),
]
_PERCENT = re.compile(r"(\d{1,3})\s*[%％]|百分之\s*(\d{1,3})")
_CANCEL_WORDS = ("取消", "算了", "cancel", "/cancel")
_ALL = ("全部", "所有", "all")  # /digest 全部: every overdue item, not one screen
# plain words that mean a command, for people who do not type slashes
_ALIASES = {
    "任务": "tasks",
    "我的任务": "tasks",
    "待办": "tasks",
    "逾期": "overdue",
    "逾期事项": "overdue",
    "汇总": "digest",
    "督办汇总": "digest",
    "帮助": "help",
    "help": "help",
    "网页": "web",
    "网页版": "web",
}


@dataclass
class _Seen:
    """What the first, read-only look at an event found (before any file is fetched)."""

    person_id: int | None = None
    admin: bool = False
    flow: str | None = None
    step: str | None = None
    quoted: int | None = None  # the occurrence a quoted reminder is about


def _intent(text: str | None) -> tuple[str | None, str]:
    value = (text or "").strip()
    for name, pattern in _INTENTS:
        match = pattern.match(value)
        if match:
            return name, value[match.end() :].strip()
    return None, value


def _percent(text: str) -> int | None:
    match = _PERCENT.search(normalise(text))
    if not match:
        return None
    return int(match.group(1) or match.group(2))


class Conversation(AdminActions):
    # ---- entry ---------------------------------------------------------------------------

    async def handle(self, event: Inbound) -> Outcome:
        """Everything one event leads to.  Never raises for what a person does.

        Store work runs in a thread (``asyncio.to_thread``), never on the event loop: a store
        that is slow or locked by another process must not freeze the chat, the sender and
        every other platform sharing the loop.  Fetching a file from the platform happens
        between those steps, on the loop."""
        if not event.private:
            return Outcome()  # groups are not bound to anyone: stay silent there
        if event.callback is not None:
            return await asyncio.to_thread(self._button, event)
        if event.command == "start" and event.args.strip():
            return await asyncio.to_thread(self._start, event)
        seen = await asyncio.to_thread(self._look, event)
        if seen.person_id is None:
            return self._stranger(event)
        fetched = await self._fetch(event, seen)
        return await asyncio.to_thread(self._act, event, seen, fetched)

    def _act(self, event: Inbound, seen: _Seen, fetched: dict[str, bytes]) -> Outcome:
        assert seen.person_id is not None
        uploading = seen.flow == IMPORT and seen.step == "await_file"
        unasked = seen.admin and seen.flow is None and seen.quoted is None
        if uploading or (
            unasked
            and event.command is None
            and any(is_schedule_file(a) for a in event.attachments)
        ):
            document = next((a for a in event.attachments if a.kind == "document"), None)
            if document is not None:
                return self._import_file(event, seen.person_id, document, fetched)
        with session_scope(self.db) as session:
            person = session.get(Person, seen.person_id)
            assert person is not None
            try:
                if event.command:
                    return self._command(session, person, event)
                return self._message(session, person, event, fetched)
            except ReplyRefused as refused:  # raised before anything was written
                return self._refused(refused.code, self._lang(person), button=False)

    def _look(self, event: Inbound) -> _Seen:
        with session_scope(self.db) as session:
            person = invites.bound_person(session, self.platform, event.chat_id)
            if person is None:
                return _Seen()
            now = self.clock.now()
            flow = flows.current(session, self.platform, event.chat_id, now)
            quoted = (
                queries.quoted_occurrence(session, person, event.reply_to)
                if event.reply_to
                else None
            )
            return _Seen(
                person.id,
                person.admin,
                flow.flow if flow else None,
                flow.step if flow else None,
                quoted,
            )

    async def _fetch(self, event: Inbound, seen: _Seen) -> dict[str, bytes]:
        """File contents this event needs: a schedule upload, or evidence to keep a copy of."""
        if not event.attachments or self.files is None:
            return {}
        wanted: list[Attachment] = []
        keep_evidence = self.config.evidence_dir is not None and (
            seen.flow == DONE or seen.quoted is not None
        )
        for attachment in event.attachments:
            size = attachment.size or 0
            if seen.admin and is_schedule_file(attachment) and seen.flow in (None, IMPORT):
                if size <= MAX_SCHEDULE_BYTES:
                    wanted.append(attachment)
            elif keep_evidence and size <= self.config.evidence_max_bytes:
                wanted.append(attachment)
        fetched: dict[str, bytes] = {}
        for attachment in wanted:
            try:
                fetched[attachment.file_id] = await self.files.fetch(attachment)
            except Exception:  # the file_id is kept either way; a local copy is a bonus
                log.warning("could not fetch %s %s", attachment.kind, attachment.file_id)
        return fetched

    # ---- strangers and binding -----------------------------------------------------------

    def _stranger(self, event: Inbound) -> Outcome:
        lang = self._lang(None, event)
        if event.callback is not None:
            return Outcome(toast=self._refusal("unknown_chat", lang), alert=True)
        return Outcome().say("chat_unknown", lang)

    def _start(self, event: Inbound) -> Outcome:
        token = event.args.strip().split()[0]
        with session_scope(self.db) as session:
            try:
                person = invites.redeem(
                    session,
                    token=token,
                    platform=self.platform,
                    chat_id=event.chat_id,
                    now=self.clock.now(),
                )
            except invites.InviteRefused as refused:
                lang = self._lang(None, event)
                return Outcome().say("chat_invite_refused", lang, code=refused.code)
            flows.clear(session, self.platform, event.chat_id)
            return self._welcome(session, person)

    def _welcome(self, session: Session, person: Person) -> Outcome:
        schedule = session.get(Schedule, person.schedule_id)
        today = self._today(session, person)
        listing = queries.my_items(session, person, today, overdue_only=False, limit=1)
        mine = len(listing.rows) + listing.more
        return Outcome().say(
            "chat_welcome",
            self._lang(person),
            person=person.name,
            title=person.title,
            schedule=schedule.title if schedule else "",
            roles=sorted(queries.roles(session, person)),
            open_count=mine,
        )

    # ---- commands --------------------------------------------------------------------------

    def _command(self, session: Session, person: Person, event: Inbound) -> Outcome:
        lang = self._lang(person)
        roles = queries.roles(session, person)
        name = event.command or ""
        if name == "start":
            return self._welcome(session, person)
        if name == "help":
            return Outcome().say("chat_help", lang, roles=sorted(roles))
        if name in ("tasks", "overdue"):
            return self._list(session, person, event, overdue=name == "overdue")
        if name == "done":
            return self._done_command(session, person, event)
        if name == "web":
            return self._web_link(session, person)
        if name == "cancel":
            flows.clear(session, self.platform, event.chat_id)
            return Outcome().say("chat_cancelled", lang)
        if name == "lang":
            return self._lang_command(session, person, event.args.strip())
        if name == "digest":
            if not roles & {queries.LEADER, queries.ADMIN}:
                return self._refused("not_leader", lang, button=False)
            return self._digest(session, person, full=event.args.strip().lower() in _ALL)
        if name in ("import", "invite", "report"):
            if queries.ADMIN not in roles:
                return self._refused("not_admin", lang, button=False)
            if name == "import":
                self._begin(session, event, person, IMPORT, "await_file")
                return Outcome().say(
                    "chat_import_ask", lang, actions=((button("cancel", 0, lang),),)
                )
            if name == "invite":
                return self._invite_command(session, person, event.args.strip())
            return self._report(session, person)
        return Outcome().say("chat_not_understood", lang, roles=sorted(roles))

    def _web_link(self, session: Session, person: Person) -> Outcome:
        """/web: a one-time sign-in link to the console, sent to this bound (private) chat --
        the chat is the proof of who asks, as an invite link is the proof at binding."""
        from bot.web.links import signin_link

        url = signin_link(
            session,
            person=person,
            base_url=self.config.web_url,
            minutes=self.config.signin_minutes,
            now=self.clock.now(),
        )
        minutes = int(self.config.signin_minutes)
        return Outcome().say("chat_web_link", self._lang(person), url=url, minutes=minutes)

    def _list(self, session: Session, person: Person, event: Inbound, *, overdue: bool) -> Outcome:
        """My items on every list this chat answers for (one human, several lists)."""
        today = self._today(session, person)
        rows: list[dict[str, Any]] = []
        more = 0
        for member in invites.bound_people(session, self.platform, event.chat_id) or [person]:
            listing = queries.my_items(
                session,
                member,
                self._today(session, member),
                overdue_only=overdue,
                limit=self.config.list_limit,
            )
            rows += listing.rows
            more += listing.more
        rows.sort(key=lambda r: (r["due_date"], ref_key(r["ref"])))
        more += max(len(rows) - self.config.list_limit, 0)
        rows = rows[: self.config.list_limit]
        listing = queries.Listing(rows, more)
        rows = [{**row, "level": RED if row["overdue_days"] else BLUE} for row in listing.rows]
        return Outcome().say(
            "chat_tasks",
            self._lang(person),
            items=rows,
            more=listing.more,
            overdue=overdue,
            today=today.isoformat(),
        )

    def _done_command(self, session: Session, person: Person, event: Inbound) -> Outcome:
        lang = self._lang(person)
        first, _, rest = event.args.strip().partition(" ")
        first = first.lstrip("#＃")
        if not first.isdigit():
            return Outcome().say("chat_done_usage", lang)
        return self._complete(
            session, person, event, int(first), note=rest.strip() or None, evidence=[]
        )

    def _lang_command(self, session: Session, person: Person, arg: str) -> Outcome:
        wanted = {"zh": "zh-CN", "zh-cn": "zh-CN", "中文": "zh-CN", "en": "en", "english": "en"}
        lang = wanted.get(arg.lower())
        if lang is None:
            current = self._lang(person)
            choices = tuple(button("lang", i, current, code=code) for i, code in enumerate(LANGS))
            return Outcome().say("chat_lang", current, actions=(choices,))
        return self._set_lang(session, person, lang)

    def _set_lang(self, session: Session, person: Person, lang: str) -> Outcome:
        person.lang = lang
        session.add(person)
        return Outcome(toast=phrase("chat_toasts", "saved", lang)).say("chat_lang_set", lang)

    def _digest(self, session: Session, person: Person, *, full: bool) -> Outcome:
        """The digest on demand, as the morning one; ``full``: every overdue item listed."""
        lang = self._lang(person)
        payload = queries.leader_digest(session, person, self._today(session, person))
        if not payload["overdue"]:
            return Outcome().say("chat_digest_empty", lang, p=payload)
        payload["full"] = full
        return Outcome().say("digest", lang, payloads=[payload], person=person.name)

    # ---- buttons -----------------------------------------------------------------------------

    def _button(self, event: Inbound) -> Outcome:
        try:
            signed = self.signer.verify(event.callback)
        except BadSignature:
            log.warning("rejected a button with bad data in chat %s", event.chat_id)
            with session_scope(self.db) as session:
                person = invites.bound_person(session, self.platform, event.chat_id)
                lang = self._lang(person, event)
            return Outcome(toast=self._refusal("bad_button", lang), alert=True)
        with session_scope(self.db) as session:
            person = invites.bound_person(session, self.platform, event.chat_id)
            if person is None:
                return self._stranger(event)
            person = queries.acting_person(session, person, signed.action, signed.ref)
            lang = self._lang(person)
            try:
                return self._press(session, person, event, signed.action, signed.ref, lang)
            except ReplyRefused as refused:
                return self._refused(refused.code, lang, button=True)

    def _press(
        self, session: Session, person: Person, event: Inbound, action: str, ref: int, lang: str
    ) -> Outcome:
        assert person.id is not None
        now = self.clock.now()
        here = [event.message_ref] if event.message_ref else []
        if action == DONE:
            self._check(session, ref, person)
            p = self._view(session, ref, person)
            self._begin(
                session, event, person, DONE, "await_evidence", ref, message=event.message_ref
            )
            required = p["evidence"] == "required"
            keys = [] if required else [button("done_now", ref, lang)]
            keys.append(button("cancel", 0, lang))
            return Outcome(toast=phrase("chat_toasts", "go_on", lang)).say(
                "chat_ask_evidence", lang, actions=(tuple(keys),), p=p, required=required
            )
        if action == "unbind":
            return self._unbind(session, person, event, ref, lang)
        if action == "done_now":
            state = flows.current(session, self.platform, event.chat_id, now)
            previous = (
                (state.data or {}).get("message") if state and state.occurrence_id == ref else None
            )
            outcome = self._complete(session, person, event, ref, note=None, evidence=[])
            outcome.clear_buttons += here + ([previous] if previous else [])
            return outcome
        if action == PROGRESS:
            self._check(session, ref, person)
            self._begin(
                session, event, person, PROGRESS, "await_note", ref, message=event.message_ref
            )
            return Outcome(toast=phrase("chat_toasts", "go_on", lang)).say(
                "chat_ask_progress",
                lang,
                actions=((button("cancel", 0, lang),),),
                p=self._view(session, ref, person),
            )
        if action == EXTEND:
            self._check(session, ref, person)
            self._begin(
                session, event, person, EXTEND, "await_date", ref, message=event.message_ref
            )
            return Outcome(toast=phrase("chat_toasts", "go_on", lang)).say(
                "chat_ask_date",
                lang,
                actions=((button("cancel", 0, lang),),),
                p=self._view(session, ref, person),
                error=None,
            )
        if action == "not_mine":
            actions.not_mine(
                session,
                occurrence_id=ref,
                person_id=person.id,
                now=now,
                via=self._via(event),
            )
            outcome = Outcome(toast=phrase("chat_toasts", "sent", lang), clear_buttons=here)
            return outcome.say("chat_not_mine_sent", lang, p=self._view(session, ref, person))
        if action == "nudge":
            count = actions.nudge(
                session, occurrence_id=ref, person_id=person.id, now=now, via=self._via(event)
            )
            return Outcome(toast=phrase("chat_toasts", "sent", lang)).say(
                "chat_nudged", lang, p=self._view(session, ref, person), count=count
            )
        if action in ("approve", "deny"):
            reply = actions.decide_extension(
                session,
                via=self._via(event),
                reply_id=ref,
                person_id=person.id,
                now=now,
                approve=action == "approve",
            )
            asker = session.get(Person, reply.person_id)
            outcome = Outcome(toast=phrase("chat_toasts", "saved", lang), clear_buttons=here)
            return outcome.say(
                "chat_extension_decided",
                lang,
                p=self._view(session, reply.occurrence_id, person),
                approved=action == "approve",
                asker=asker.name if asker else "",
                requested=reply.requested_date.isoformat() if reply.requested_date else "",
            )
        if action == "cancel":
            flows.clear(session, self.platform, event.chat_id)
            outcome = Outcome(toast=phrase("chat_toasts", "cancelled", lang), clear_buttons=here)
            return outcome.say("chat_cancelled", lang)
        if action == "lang":
            if ref >= len(LANGS):
                raise ReplyRefused("not_found")
            outcome = self._set_lang(session, person, LANGS[ref])
            outcome.clear_buttons += here
            return outcome
        if action in ("import_ok", "import_no"):
            return self._import_decision(session, person, event, confirm=action == "import_ok")
        raise ReplyRefused("not_found")

    def _unbind(
        self, session: Session, person: Person, event: Inbound, binding_id: int, lang: str
    ) -> Outcome:
        """这不是我: the person (from another of their chats) or an admin of one of their lists
        takes a binding off; admins are told."""
        binding = session.get(ChatBinding, binding_id)
        if binding is None:
            raise ReplyRefused("not_found")
        owners = session.exec(select(Person).where(Person.identity_id == binding.identity_id)).all()
        admin_of = {
            p.schedule_id
            for p in invites.bound_people(session, self.platform, event.chat_id)
            if p.admin
        }
        mine = person.identity_id == binding.identity_id
        if not mine and not any(o.schedule_id in admin_of for o in owners):
            raise ReplyRefused("not_allowed")
        if not binding.active:
            raise ReplyRefused("already_unbound")
        now = self.clock.now()
        who = owners[0].name if owners else ""
        unbind(session, binding, now=now, actor=f"person:{person.id}", why="not_me")
        if mine:  # the admins hear that the person said "not me"
            for owner in owners:
                announce_removed(session, person=owner, binding=binding, now=now)
        here = [event.message_ref] if event.message_ref else []
        return Outcome(toast=phrase("chat_toasts", "saved", lang), clear_buttons=here).say(
            "chat_unbound", lang, person=who, platform=binding.platform
        )

    # ---- messages ------------------------------------------------------------------------------

    def _message(
        self, session: Session, person: Person, event: Inbound, fetched: dict[str, bytes]
    ) -> Outcome:
        lang = self._lang(person)
        now = self.clock.now()
        text = (event.text or "").strip()
        state = flows.current(session, self.platform, event.chat_id, now)
        if state is not None and state.step == "more_evidence":
            data = state.data or {}
            if event.group and event.group == data.get("group") and event.attachments:
                return self._more_evidence(session, person, event, state, fetched)
            flows.clear(session, self.platform, event.chat_id)  # the album is over
            state = None
        if state is not None and text.lower() in _CANCEL_WORDS:
            flows.clear(session, self.platform, event.chat_id)
            return Outcome().say("chat_cancelled", lang)
        if state is not None and state.flow != IMPORT:
            try:
                return self._continue(session, person, event, state, fetched)
            except ReplyRefused as refused:
                flows.clear(session, self.platform, event.chat_id)
                return self._refused(refused.code, lang, button=False)
        if state is not None:  # an import waits for a file or a tap on its buttons
            return Outcome().say("chat_import_waiting", lang, step=state.step)
        quoted = (
            queries.quoted_occurrence(session, person, event.reply_to) if event.reply_to else None
        )
        if quoted is not None:
            try:
                acting = queries.acting_person(session, person, "done", quoted)
                return self._answer(session, acting, event, quoted, fetched)
            except ReplyRefused as refused:
                return self._refused(refused.code, lang, button=False)
        alias = _ALIASES.get(text.lower())
        if alias:
            return self._command(session, person, replace(event, command=alias, args=""))
        roles = sorted(queries.roles(session, person))
        return Outcome().say("chat_not_understood", lang, roles=roles)

    def _continue(
        self,
        session: Session,
        person: Person,
        event: Inbound,
        state: ChatState,
        fetched: dict[str, bytes],
    ) -> Outcome:
        """The next step of a flow begun by a button."""
        lang = self._lang(person)
        occ_id = state.occurrence_id
        assert occ_id is not None
        text = (event.text or "").strip()
        earlier = (state.data or {}).get("message")
        if state.flow == DONE:
            if not text and not event.attachments:
                return Outcome().say(
                    "chat_ask_evidence", lang, p=self._view(session, occ_id, person), required=True
                )
            evidence = self._evidence(session, event, occ_id, fetched)
            outcome = self._complete(
                session, person, event, occ_id, note=text or None, evidence=evidence
            )
            outcome.clear_buttons += [earlier] if earlier else []
            return outcome
        if state.flow == PROGRESS:
            if not text:
                return Outcome().say(
                    "chat_ask_progress", lang, p=self._view(session, occ_id, person)
                )
            return self._progress(session, person, event, occ_id, text, earlier)
        if state.flow == EXTEND and state.step == "await_date":
            return self._extension_date(session, person, event, state, text)
        if state.flow == EXTEND and state.step == "await_reason":
            if not text:
                return Outcome().say(
                    "chat_ask_reason",
                    lang,
                    p=self._view(session, occ_id, person),
                    requested_date=(state.data or {}).get("new_date"),
                )
            new_date = date.fromisoformat(str((state.data or {})["new_date"]))
            return self._request_extension(session, person, event, occ_id, new_date, text, earlier)
        flows.clear(session, self.platform, event.chat_id)
        return Outcome().say("chat_cancelled", lang)

    def _answer(
        self,
        session: Session,
        person: Person,
        event: Inbound,
        occ_id: int,
        fetched: dict[str, bytes],
    ) -> Outcome:
        """A plain reply quoting a reminder: "已完成，会议纪要见附件" with a file."""
        lang = self._lang(person)
        intent, rest = _intent(event.text)
        if intent == "done":
            evidence = self._evidence(session, event, occ_id, fetched)
            outcome = self._complete(
                session, person, event, occ_id, note=rest or None, evidence=evidence
            )
            outcome.clear_buttons.append(event.reply_to or "")
            return outcome
        if intent == "progress" and rest:
            return self._progress(session, person, event, occ_id, rest, None)
        if intent == "not_mine":
            assert person.id is not None
            actions.not_mine(
                session,
                via=self._via(event),
                occurrence_id=occ_id,
                person_id=person.id,
                now=self.clock.now(),
                note=rest or None,
            )
            outcome = Outcome(clear_buttons=[event.reply_to or ""])
            return outcome.say("chat_not_mine_sent", lang, p=self._view(session, occ_id, person))
        if intent == "extend":
            self._check(session, occ_id, person)
            state = self._begin(
                session, event, person, EXTEND, "await_date", occ_id, message=event.reply_to
            )
            if rest:
                return self._extension_date(session, person, event, state, rest)
            return Outcome().say(
                "chat_ask_date",
                lang,
                actions=((button("cancel", 0, lang),),),
                p=self._view(session, occ_id, person),
                error=None,
            )
        self._check(session, occ_id, person)  # nothing recognised: offer the buttons again
        p = self._view(session, occ_id, person)
        return Outcome().say("chat_choose", lang, actions=self._answer_buttons(occ_id, lang), p=p)

    # ---- the actions -----------------------------------------------------------------------------

    def _evidence(
        self, session: Session, event: Inbound, occ_id: int, fetched: dict[str, bytes]
    ) -> list[EvidenceIn]:
        """What the person sent, with a local copy where the evidence folder is configured."""
        kept: list[EvidenceIn] = []
        occ = session.get(Occurrence, occ_id)
        for attachment in event.attachments:
            local = None
            content = fetched.get(attachment.file_id)
            if content is not None and self.config.evidence_dir is not None and occ is not None:
                local = self._keep(occ, attachment, content)
            kept.append(
                EvidenceIn(
                    kind=attachment.kind,
                    file_id=attachment.file_id,
                    file_name=attachment.file_name,
                    mime_type=attachment.mime_type
                    or ("image/jpeg" if attachment.kind == "photo" else None),
                    size=attachment.size,
                    local_path=local,
                )
            )
        return kept

    def _more_evidence(
        self,
        session: Session,
        person: Person,
        event: Inbound,
        state: ChatState,
        fetched: dict[str, bytes],
    ) -> Outcome:
        """The rest of an album sent with a completion: filed with the same reply, silently."""
        now = self.clock.now()
        occ = session.get(Occurrence, state.occurrence_id)
        reply_id = int((state.data or {})["reply"])
        assert occ is not None and occ.id is not None
        evidence = self._evidence(session, event, occ.id, fetched)
        for item in evidence:
            session.add(Evidence(reply_id=reply_id, created_at=now, **item.__dict__))
        session.add(
            AuditEvent(
                at=now,
                actor=f"person:{person.id}",
                action="evidence_added",
                schedule_id=occ.schedule_id,
                occurrence_id=occ.id,
                person_id=person.id,
                detail={"by": person.name, "reply": reply_id, "evidence": len(evidence)},
            )
        )
        flows.advance(session, state, step=state.step, now=now, ttl=self.config.state_ttl)
        return Outcome()

    def _keep(self, occ: Occurrence, attachment: Attachment, content: bytes) -> str:
        assert self.config.evidence_dir is not None
        folder = self.config.evidence_dir / safe_name(occ.schedule_id) / f"occurrence-{occ.id}"
        folder.mkdir(parents=True, exist_ok=True)
        stem = safe_name(attachment.unique_id or attachment.file_id)
        name = attachment.file_name or ("photo.jpg" if attachment.kind == "photo" else "file")
        path = folder / f"{stem}-{safe_name(name)}"
        path.write_bytes(content)
        return str(path)

    def _complete(
        self,
        session: Session,
        person: Person,
        event: Inbound,
        occ_id: int,
        *,
        note: str | None,
        evidence: list[EvidenceIn],
    ) -> Outcome:
        assert person.id is not None
        lang = self._lang(person)
        try:
            reply = actions.complete(
                session,
                via=self._via(event),
                occurrence_id=occ_id,
                person_id=person.id,
                now=self.clock.now(),
                note=note,
                evidence=evidence,
            )
        except ReplyRefused as refused:
            for item in evidence:  # nothing was recorded: keep no orphan copies
                if item.local_path:
                    with contextlib.suppress(OSError):
                        Path(item.local_path).unlink()
            if refused.code == "evidence_required":  # ask for it instead of giving up
                self._begin(session, event, person, DONE, "await_evidence", occ_id)
                return Outcome(toast=phrase("chat_refusals", "evidence_required", lang)).say(
                    "chat_ask_evidence",
                    lang,
                    actions=((button("cancel", 0, lang),),),
                    p=self._view(session, occ_id, person),
                    required=True,
                )
            raise
        flows.clear(session, self.platform, event.chat_id)
        if event.group and evidence:  # the album's other photos are on their way
            self._begin(
                session,
                event,
                person,
                DONE,
                "more_evidence",
                occ_id,
                reply=reply.id,
                group=event.group,
            )
        p = self._view(session, occ_id, person)
        return Outcome(toast=phrase("chat_toasts", "done", lang)).say(
            "chat_done",
            lang,
            p=p,
            note=note,
            evidence_count=len(evidence),
            finished=p["status"] == "done",
        )

    def _progress(
        self,
        session: Session,
        person: Person,
        event: Inbound,
        occ_id: int,
        text: str,
        earlier: str | None,
    ) -> Outcome:
        assert person.id is not None
        percent = _percent(text)
        actions.report_progress(
            session,
            via=self._via(event),
            occurrence_id=occ_id,
            person_id=person.id,
            now=self.clock.now(),
            note=text,
            percent=percent,
        )
        flows.clear(session, self.platform, event.chat_id)
        p = self._view(session, occ_id, person)
        outcome = Outcome(toast=phrase("chat_toasts", "saved", self._lang(person)))
        if p["status"] != "open" and earlier:
            outcome.clear_buttons.append(earlier)
        return outcome.say("chat_progress_saved", self._lang(person), p=p, percent=percent)

    def _extension_date(
        self, session: Session, person: Person, event: Inbound, state: ChatState, text: str
    ) -> Outcome:
        lang = self._lang(person)
        occ_id = state.occurrence_id
        assert occ_id is not None
        today = self._today(session, person)
        found = find_date(text, today) if text else None
        p = self._view(session, occ_id, person)
        cancel = ((button("cancel", 0, lang),),)
        if found is None:
            return Outcome().say("chat_ask_date", lang, actions=cancel, p=p, error="unparsed")
        occ = session.get(Occurrence, occ_id)
        assert occ is not None
        if found.day <= effective_due(occ):
            return Outcome().say(
                "chat_ask_date",
                lang,
                actions=cancel,
                p=p,
                error="not_later",
                given=found.day.isoformat(),
            )
        reason = re.sub("^" + _PUNCT, "", normalise(text)[found.end :]).strip()
        reason = re.sub(r"^(?:因为|由于|原因[是:：]?|because)\s*", "", reason) if reason else ""
        earlier = (state.data or {}).get("message")
        if reason:  # "延期到6月20日，设备未到货": date and reason in one message
            return self._request_extension(
                session, person, event, occ_id, found.day, reason, earlier
            )
        flows.advance(
            session,
            state,
            step="await_reason",
            now=self.clock.now(),
            ttl=self.config.state_ttl,
            new_date=found.day.isoformat(),
        )
        return Outcome().say(
            "chat_ask_reason", lang, actions=cancel, p=p, requested_date=found.day.isoformat()
        )

    def _request_extension(
        self,
        session: Session,
        person: Person,
        event: Inbound,
        occ_id: int,
        new_date: date,
        reason: str,
        earlier: str | None,
    ) -> Outcome:
        assert person.id is not None
        actions.request_extension(
            session,
            via=self._via(event),
            occurrence_id=occ_id,
            person_id=person.id,
            now=self.clock.now(),
            new_date=new_date,
            reason=reason,
        )
        flows.clear(session, self.platform, event.chat_id)
        lang = self._lang(person)
        p = self._view(session, occ_id, person)
        return Outcome(toast=phrase("chat_toasts", "sent", lang)).say(
            "chat_extension_sent", lang, p=p, requested_date=new_date.isoformat(), note=reason
        )
