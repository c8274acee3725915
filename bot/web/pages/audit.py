"""The audit trail of a list (admins), filterable, and its CSV export -- the rows and the
writer of ``dutybot audit`` (:mod:`bot.reports.audit`), so the page, the file and the
command say the same."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from bot.reports.audit import audit_headers, audit_rows, load_audit, local_time
from bot.reports.writers import write_csv
from bot.store.db import session_scope
from bot.store.models import Schedule
from bot.texts import phrase
from bot.web.app import page
from bot.web.auth import Viewer, require_admin

router = APIRouter()
ROWS_SHOWN = 200  # newest first; the CSV has them all


@dataclass(frozen=True)
class AuditFilters:
    since: date | None = None
    until: date | None = None
    action: str = ""
    channel: str = ""
    q: str = ""


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _filters(request: Request) -> AuditFilters:
    params = request.query_params
    return AuditFilters(
        since=_day(params.get("since")),
        until=_day(params.get("until")),
        action=params.get("action", "")[:40],
        channel=params.get("channel", "")[:16],
        q=params.get("q", "").strip()[:100],
    )


def filtered(
    request: Request, schedule_id: str, filters: AuditFilters
) -> tuple[list[str], list[tuple[str, ...]], list[str], list[str]]:
    """Headers, the kept rows (oldest first), and the actions and channels there are."""
    lang = str(request.app.state.settings.lang)
    with session_scope(request.app.state.engine) as session:
        data = load_audit(session, schedule_id=schedule_id, since=filters.since)
    actions = sorted({e.action for e in data.events})
    channels = sorted({e.channel for e in data.events if e.channel})
    events = [
        e
        for e in data.events
        if (not filters.action or e.action == filters.action)
        and (not filters.channel or e.channel == filters.channel)
        and (filters.until is None or local_time(e, data).date() <= filters.until)
    ]
    rows = audit_rows(replace(data, events=events), lang)
    if filters.q:
        rows = [r for r in rows if any(filters.q in cell for cell in r)]
    return audit_headers(lang), rows, actions, channels


@router.get("/s/{schedule_id}/audit")
def audit_page(
    request: Request, schedule_id: str, viewer: Annotated[Viewer, Depends(require_admin)]
) -> Response:
    filters = _filters(request)
    headers, rows, actions, channels = filtered(request, schedule_id, filters)
    with session_scope(request.app.state.engine) as session:
        schedule = session.get(Schedule, schedule_id)
    lang = str(request.app.state.settings.lang)
    return page(
        request,
        "audit.html",
        {
            "schedule": schedule,
            "headers": headers,
            "rows": list(reversed(rows))[:ROWS_SHOWN],
            "total": len(rows),
            "shown": ROWS_SHOWN,
            "filters": filters,
            "actions": [(a, phrase("audit", "action", lang, action=a)) for a in actions],
            "channels": channels,
            "query": request.url.query,
        },
    )


@router.get("/s/{schedule_id}/audit.csv")
def audit_csv(
    request: Request, schedule_id: str, viewer: Annotated[Viewer, Depends(require_admin)]
) -> Response:
    """The filtered trail as ``dutybot audit`` writes it (UTF-8 with a BOM)."""
    headers, rows, _actions, _channels = filtered(request, schedule_id, _filters(request))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "audit.csv"
        write_csv(path, headers, rows)
        body = path.read_bytes()
    name = quote(f"audit-{schedule_id}.csv")
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f"attachment; filename=\"audit.csv\"; filename*=UTF-8''{name}"
        },
    )
