"""``/a/<signed>``: one-tap action pages, for platforms whose buttons can only open a link.

The link (bot.web.links.action_link) is signed like a button and names the occurrence, the
person it was sent to and its last day; no sign-in is needed -- the signature is the
authority, as a button press is in chat, and the store still decides whether that person
may answer now (bot.replies.check_can_answer).  The page is a small form: mark done with a
note and a photo or file, report progress, or ask for an extension.  The POST carries the
session's CSRF token, and goes through the same domain functions as chat, recorded with
channel ``web``.  Evidence files are kept where chat keeps them (DUTYBOT_EVIDENCE_DIR).
"""

from __future__ import annotations

import contextlib
import secrets
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session
from starlette.datastructures import UploadFile

from bot import replies
from bot.conversation.base import safe_name
from bot.conversation.queries import occurrence_view, schedule_clock
from bot.replies import EvidenceIn, ReplyRefused, Via
from bot.signing import BadSignature, LinkExpired, SignedLink
from bot.store.db import session_scope
from bot.store.models import Occurrence, Person
from bot.texts import phrase
from bot.web.app import page
from bot.web.links import LINK_ACTIONS, link_signer

router = APIRouter()
WEB = Via("web")
DEFAULT_EVIDENCE_DIR = Path("evidence")


def _verify(request: Request, data: str) -> SignedLink | str:
    """The link's content, or the name of the refusal page's reason."""
    today = request.app.state.clock.now().date()
    try:
        link = link_signer(request.app.state.settings).verify_link(data, today)
    except LinkExpired:
        return "expired"
    except (BadSignature, ValueError):
        return "forged"
    return link if link.action in LINK_ACTIONS else "forged"


def _refused(request: Request, reason: str, status: int = 403) -> Response:
    lang = request.app.state.settings.lang
    text = phrase("web", f"link_{reason}", lang) if reason in ("expired", "forged") else None
    if text is None:
        text = phrase("chat_refusals", reason, lang)
    return page(request, "action_refused.html", {"reason": text}, status=status)


def _context(session: Session, link: SignedLink, now: datetime) -> dict[str, Any] | str:
    """What the page shows of the occurrence, or a refusal code (bot.replies)."""
    try:
        replies.check_can_answer(session, link.ref, link.person_id)
    except ReplyRefused as refused:
        return refused.code
    occ = session.get(Occurrence, link.ref)
    person = session.get(Person, link.person_id)
    assert occ is not None and person is not None
    _, st = schedule_clock(session, occ.schedule_id)
    item = occurrence_view(session, link.ref, st.local_date(now))
    return {"item": item, "person": person.name, "action": link.action}


@router.get("/a/{data}")
def action_page(request: Request, data: str) -> Response:
    link = _verify(request, data)
    if isinstance(link, str):
        return _refused(request, link)
    state = request.app.state
    with session_scope(state.engine) as session:
        found = _context(session, link, state.clock.now())
    if isinstance(found, str):
        return _refused(request, found, status=409)
    return page(request, "action.html", {**found, "data": data, "error": None})


def _keep(folder: Path, occ: Occurrence, upload: UploadFile, content: bytes) -> str:
    """A copy of an uploaded file beside chat's evidence: <dir>/<schedule>/occurrence-<id>/."""
    where = folder / safe_name(occ.schedule_id) / f"occurrence-{occ.id}"
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"web-{secrets.token_hex(6)}-{safe_name(upload.filename or 'file')}"
    path.write_bytes(content)
    return str(path)


async def _uploads(request: Request, form: Any, occ: Occurrence) -> list[EvidenceIn] | str:
    """The evidence files of the form, kept on disk; a refusal key when one is too large."""
    settings = request.app.state.settings
    folder = Path(settings.evidence_dir) if settings.evidence_dir else DEFAULT_EVIDENCE_DIR
    kept: list[EvidenceIn] = []
    for upload in form.getlist("evidence"):
        if not isinstance(upload, UploadFile) or not upload.filename:
            continue  # an empty file input sends a nameless part
        content = await upload.read(settings.evidence_max_bytes + 1)
        if len(content) > settings.evidence_max_bytes:
            for item in kept:
                with contextlib.suppress(OSError):
                    Path(item.local_path or "").unlink()
            return "too_large"
        mime = upload.content_type or None
        kept.append(
            EvidenceIn(
                kind="photo" if mime and mime.startswith("image/") else "document",
                file_name=upload.filename[:200],
                mime_type=mime,
                size=len(content),
                local_path=_keep(folder, occ, upload, content),
            )
        )
    return kept


def _text(form: Any, name: str, limit: int = 2000) -> str | None:
    value = form.get(name)
    return value.strip()[:limit] or None if isinstance(value, str) else None


@router.post("/a/{data}")
async def act(request: Request, data: str) -> Response:
    link = _verify(request, data)
    if isinstance(link, str):
        return _refused(request, link)
    state = request.app.state
    lang = state.settings.lang
    form = await request.form()  # parsed once (the CSRF check read it); files spool to disk
    now = state.clock.now()
    error: str | None = None
    with session_scope(state.engine) as session:
        found = _context(session, link, now)
        if isinstance(found, str):
            return _refused(request, found, status=409)
        occ = session.get(Occurrence, link.ref)
        assert occ is not None
        note = _text(form, "note")
        try:
            if link.action == "done":
                evidence = await _uploads(request, form, occ)
                if isinstance(evidence, str):
                    error = phrase("web", "file_too_large", lang)
                else:
                    try:
                        replies.complete(
                            session,
                            occurrence_id=link.ref,
                            person_id=link.person_id,
                            now=now,
                            via=WEB,
                            note=note,
                            evidence=evidence,
                        )
                    except ReplyRefused:
                        for item in evidence:  # nothing recorded: no orphan copies
                            with contextlib.suppress(OSError):
                                Path(item.local_path or "").unlink()
                        raise
            elif link.action == "progress":
                percent_text = _text(form, "percent", 3)
                if note is None:
                    error = phrase("web", "note_needed", lang)
                elif percent_text is not None and not percent_text.isdigit():
                    error = phrase("chat_refusals", "bad_percent", lang)
                else:
                    replies.report_progress(
                        session,
                        occurrence_id=link.ref,
                        person_id=link.person_id,
                        now=now,
                        via=WEB,
                        note=note,
                        percent=int(percent_text) if percent_text else None,
                    )
            else:
                try:
                    new_date = date.fromisoformat(_text(form, "new_date", 10) or "")
                except ValueError:
                    error = phrase("web", "date_needed", lang)
                else:
                    replies.request_extension(
                        session,
                        occurrence_id=link.ref,
                        person_id=link.person_id,
                        now=now,
                        via=WEB,
                        new_date=new_date,
                        reason=note,
                    )
        except ReplyRefused as refused:
            error = phrase("chat_refusals", refused.code, lang)
    if error is not None:
        return page(request, "action.html", {**found, "data": data, "error": error}, status=422)
    return page(request, "action_done.html", {**found})
