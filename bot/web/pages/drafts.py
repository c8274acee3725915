"""Load a list: upload a document or a schedule YAML, review the draft, preview, apply.

Everything goes through :mod:`bot.drafts` (the Draft row the chat /import flow shares):
``create_draft`` runs the extractor on a document, ``update_task_in_draft`` validates each
fix and returns its errors by field, ``preview`` rehearses the import and rolls it back,
``apply`` imports through the one importer.  The audit channel is ``web``.

Who: an admin of any list may load a new one; a draft of a list that exists already may be
reviewed and applied only by that list's admins (as in chat: ``import_other_schedule``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from bot import drafts
from bot.replies import Via
from bot.schedule.validate import read_yaml
from bot.store.db import session_scope
from bot.store.models import Draft, Schedule
from bot.texts import render
from bot.web.app import page
from bot.web.auth import Forbidden, Viewer, current_viewer

router = APIRouter()
WEB = Via("web")
UPLOAD_SUFFIXES = (".docx", ".xlsx", ".txt", ".html", ".htm", ".md", ".yaml", ".yml")
EDITABLE = ("lead", "responsible", "units", "partners", "due", "every")
NAME_SPLIT = re.compile(r"[、,，;；\s]+")


def _admin_person(viewer: Viewer) -> int:
    """The viewer's Person row in a list they administer (drafts record who made them)."""
    for schedule_id in viewer.schedules:
        if viewer.has(schedule_id, "admin"):
            person = viewer.person_in(schedule_id)
            assert person is not None
            return person
    raise Forbidden("not_admin")


def _draft_for(session: Session, viewer: Viewer, draft_id: int) -> Draft:
    """The draft, for its maker or an admin of the list it loads; else a 403."""
    _admin_person(viewer)
    draft = session.get(Draft, draft_id)
    if draft is None:
        raise Forbidden("no_draft")
    mine = draft.created_by_id in viewer.persons.values()
    existing = draft.schedule_id and session.get(Schedule, draft.schedule_id) is not None
    if existing and not viewer.has(draft.schedule_id or "", "admin"):
        raise Forbidden("import_other_schedule")
    if not (mine or existing):
        raise Forbidden("no_draft")
    return draft


def _lang(request: Request) -> str:
    return str(request.app.state.settings.lang)


@router.get("/drafts/new")
def new_draft(request: Request, viewer: Annotated[Viewer, Depends(current_viewer)]) -> Response:
    _admin_person(viewer)
    return page(request, "draft_upload.html", {"suffixes": UPLOAD_SUFFIXES})


@router.post("/drafts")
async def upload(
    request: Request, viewer: Annotated[Viewer, Depends(current_viewer)], file: UploadFile
) -> Response:
    """An upload becomes a Draft row; a refused one is said on the upload page."""
    person_id = _admin_person(viewer)
    name = Path(file.filename or "").name
    limit = int(request.app.state.settings.web_max_upload_bytes)
    content = await file.read(limit + 1)
    error: dict[str, Any] | None = None
    if not name.lower().endswith(UPLOAD_SUFFIXES):
        error = {"code": "bad_suffix", "name": name}
    elif len(content) > limit:
        error = {"code": "too_big", "name": name, "limit": limit // (1024 * 1024)}
    if error is None:
        now = request.app.state.clock.now()
        try:
            with session_scope(request.app.state.engine) as session:
                draft = drafts.create_draft(
                    session,
                    name=name,
                    content=content,
                    person_id=person_id,
                    now=now,
                    via=WEB,
                    lang=_lang(request),
                )
                draft_id = draft.id
            return RedirectResponse(f"/drafts/{draft_id}", status_code=303)
        except drafts.DraftRefused as refused:
            error = {"code": refused.code, "name": name, **refused.context}
        except Exception:  # an unreadable document: said plainly, the traceback goes to the log
            import logging

            logging.getLogger("dutybot.web").exception("upload %s unreadable", name)
            error = {"code": "unreadable", "name": name}
    ctx = {"suffixes": UPLOAD_SUFFIXES, "error": error}
    return page(request, "draft_upload.html", ctx, status=400)


def _names(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else ([str(value)] if value else [])


def _review_context(draft: Draft, lang: str) -> dict[str, Any]:
    """Each drafted task beside its source lines, with what to check highlighted."""
    tree = read_yaml(draft.yaml_text)
    lines = {int(n): text for n, text in draft.source_lines or []}
    flags = list(draft.flags or [])
    by_ref: dict[str, list[dict[str, Any]]] = {}
    general = []
    for flag in flags:
        (by_ref.setdefault(str(flag["ref"]), []) if flag.get("ref") else general).append(flag)
    loaded = drafts.validate_draft(draft, lang)
    tasks = []
    for index, task in enumerate(tree.get("tasks") or [], 1):
        ref = str(task.get("ref"))
        owners = {key: _names(task.get(key)) for key in drafts.OWNER_ROLES}
        source = [(n, lines.get(int(n), "")) for n in (draft.task_lines or {}).get(ref, [])]
        tasks.append(
            {
                "index": index,
                "ref": ref,
                "title": str(task.get("title") or ""),
                "owners": owners,
                "due": str(task.get("due") or ""),
                "every": str(task.get("every") or ""),
                "deadline_text": str(task.get("deadline_text") or ""),
                "source": source,
                "flags": by_ref.get(ref, []),
                "reminds_nobody": not (owners["lead"] or owners["responsible"] or owners["units"]),
            }
        )
    return {
        "draft": draft,
        "tree": tree,
        "tasks": tasks,
        "general": general,
        "problems": [str(p) for p in loaded.errors],
        "ok": loaded.ok,
    }


@router.get("/drafts/{draft_id}")
def review(
    request: Request, draft_id: int, viewer: Annotated[Viewer, Depends(current_viewer)]
) -> Response:
    with session_scope(request.app.state.engine) as session:
        draft = _draft_for(session, viewer, draft_id)
        ctx = _review_context(draft, _lang(request))
    return page(request, "draft_review.html", {**ctx, "errors": {}, "edited": None})


@router.post("/drafts/{draft_id}/task/{index}")
async def edit_task(
    request: Request,
    draft_id: int,
    index: int,
    viewer: Annotated[Viewer, Depends(current_viewer)],
) -> Response:
    """Fix owners, deadline or frequency of one task; errors come back at their field."""
    form = await request.form()
    now = request.app.state.clock.now()
    lang = _lang(request)
    with session_scope(request.app.state.engine) as session:
        draft = _draft_for(session, viewer, draft_id)
        before = _review_context(draft, lang)["tasks"][index - 1]
        changes: dict[str, Any] = {}
        for key in drafts.OWNER_ROLES:
            names = [n for n in NAME_SPLIT.split(str(form.get(key) or "")) if n]
            if names != before["owners"][key]:
                changes[key] = names
        for key in ("due", "every"):
            value = str(form.get(key) or "").strip()
            if value and value != before[key]:
                changes[key] = value
        errors = drafts.FieldErrors()
        if changes:
            errors = drafts.update_task_in_draft(
                session,
                draft_id=draft_id,
                ref=before["ref"],
                changes=changes,
                person_id=_admin_person(viewer),
                now=now,
                via=WEB,
                lang=lang,
            )
        ctx = _review_context(draft, lang)
    submitted = {key: str(form.get(key) or "") for key in EDITABLE} if errors.by_field else None
    return page(
        request,
        "draft_review.html",
        {**ctx, "errors": {index: errors.by_field}, "edited": index, "submitted": submitted},
    )  # 200 with the errors at their fields: htmx swaps only successful answers


@router.post("/drafts/{draft_id}/preview")
def preview(
    request: Request, draft_id: int, viewer: Annotated[Viewer, Depends(current_viewer)]
) -> Response:
    """What applying would change, rehearsed and rolled back."""
    now = request.app.state.clock.now()
    lang = _lang(request)
    settings = request.app.state.settings
    with session_scope(request.app.state.engine) as session:
        draft = _draft_for(session, viewer, draft_id)
        ctx = _review_context(draft, lang)
        diff_text = None
        if ctx["ok"]:
            diff = drafts.preview(
                session, draft_id=draft_id, now=now, horizon_days=settings.horizon_days
            )
            diff_text = render("import_diff", lang, diff=diff)
    forecast_text = None
    if diff_text is not None:
        from bot.forecast import describe

        found = drafts.forecast_draft(
            request.app.state.engine,
            draft_id=draft_id,
            now=now,
            horizon_days=settings.horizon_days,
        )
        tz = ZoneInfo(str(ctx["tree"].get("timezone") or "Asia/Shanghai"))
        forecast_text = describe(found, tz, lang)
    return page(
        request,
        "draft_review.html",
        {**ctx, "errors": {}, "edited": None, "diff": diff_text, "forecast": forecast_text},
    )


@router.post("/drafts/{draft_id}/apply")
async def apply(
    request: Request, draft_id: int, viewer: Annotated[Viewer, Depends(current_viewer)]
) -> Response:
    """Import in one transaction; the uploader may name themselves the list's admin."""
    form = await request.form()
    now = request.app.state.clock.now()
    lang = _lang(request)
    settings = request.app.state.settings
    person_id = _admin_person(viewer)
    try:
        with session_scope(request.app.state.engine) as session:
            _draft_for(session, viewer, draft_id)
            if form.get("me_admin"):
                drafts.add_admin(
                    session,
                    draft_id=draft_id,
                    name=viewer.name,
                    person_id=person_id,
                    now=now,
                    via=WEB,
                )
            diff = drafts.apply(
                session,
                draft_id=draft_id,
                person_id=person_id,
                now=now,
                horizon_days=settings.horizon_days,
                via=WEB,
            )
            if form.get("me_admin"):
                drafts.claim(
                    session,
                    schedule_id=diff.schedule_id,
                    name=viewer.name,
                    identity_id=viewer.identity_id,
                )
    except drafts.DraftRefused as refused:
        with session_scope(request.app.state.engine) as session:
            ctx = _review_context(_draft_for(session, viewer, draft_id), lang)
        message = {"code": refused.code, **refused.context}
        return page(
            request,
            "draft_review.html",
            {**ctx, "errors": {}, "edited": None, "refused": message},
            status=422,
        )
    return RedirectResponse(f"/s/{diff.schedule_id}?imported=1", status_code=303)


@router.get("/drafts/{draft_id}/yaml")
def download_yaml(
    request: Request, draft_id: int, viewer: Annotated[Viewer, Depends(current_viewer)]
) -> Response:
    """The reviewed schedule file, to keep or to load with ``dutybot import``."""
    with session_scope(request.app.state.engine) as session:
        draft = _draft_for(session, viewer, draft_id)
        text, name = draft.yaml_text, (draft.schedule_id or f"draft-{draft_id}")
    return Response(
        text.encode(),
        media_type="application/x-yaml; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.yaml"'},
    )
