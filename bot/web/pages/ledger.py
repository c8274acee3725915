"""The ledger (台账) dashboard at ``/ledger`` and a task's page with its timeline.

Every row is judged by the export's own functions (:func:`bot.reports.ledger.assess` and
:func:`~bot.reports.ledger.ledger_row`), so the page and ``dutybot report`` never disagree;
the export buttons call the same builder and writers as the command.  Actions (approve or
deny an extension, 催办) go through :mod:`bot.replies` with the audit channel ``web``.

Who sees what: an admin or the chief of a list sees every task of it; anyone else the
tasks they lead, are responsible for or are chased for (their units' tasks).
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlmodel import Session, col, select

from bot import replies
from bot.materialise import schedule_time
from bot.reports.ledger import (
    COLUMNS,
    STATE_DONE,
    STATE_OPEN,
    STATE_OVERDUE,
    Cell,
    Progress,
    assess,
    build_ledger,
    ledger_row,
)
from bot.reports.records import ScheduleRecord, TaskRecord, load_records, load_schedule_record
from bot.reports.writers import write_ledger_csv, write_ledger_xlsx
from bot.roster import Roster
from bot.store.db import session_scope
from bot.store.models import (
    OPEN,
    Evidence,
    Notification,
    Occurrence,
    Person,
    Reply,
    Schedule,
    Task,
)
from bot.texts import phrase
from bot.web.app import page
from bot.web.auth import Forbidden, Viewer, current_viewer, require_member

router = APIRouter()
WEB = replies.Via("web")
DUE_SOON_DAYS = 7  # an open task due within a week is 黄 (临期)
ROWS_SHOWN = 300  # the page lists this many rows; the counts and chart cover all of them
COLOURS = ("red", "yellow", "green", "grey")
TIMELINE_KINDS = frozenset(
    {"reminder", "escalation", "nudge", "extension_decision", "extension_request", "completed"}
)
EXPORT_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}


@dataclass(frozen=True)
class Row:
    """One task as the dashboard lists it: the ledger's cells plus what filters need."""

    schedule_id: str
    task_id: int
    cells: dict[str, Cell]
    state: str
    colour: str
    units: tuple[str, ...]
    leaders: tuple[str, ...]
    due: date | None
    pending_extension: bool


@dataclass
class Dashboard:
    rows: list[Row] = field(default_factory=list)
    total: int = 0
    colours: Counter[str] = field(default_factory=Counter)
    overdue_by_unit: list[tuple[str, int]] = field(default_factory=list)
    units: list[str] = field(default_factory=list)
    leaders: list[str] = field(default_factory=list)


def colour_of(progress: Progress) -> str:
    """三色: 红 overdue; 黄 due within a week or waiting for an extension; 绿 done or on
    track; grey when nothing is to be chased (not started, undated, cancelled)."""
    if progress.state == STATE_OVERDUE:
        return "red"
    if progress.state == STATE_DONE:
        return "green"
    if progress.state != STATE_OPEN:
        return "grey"
    soon = progress.due is not None and progress.due <= progress.today + timedelta(DUE_SOON_DAYS)
    return "yellow" if soon or progress.pending_extension else "green"


def sees_all(viewer: Viewer, schedule_id: str, roster: Roster) -> bool:
    """Admins and the chief see the whole list."""
    if viewer.has(schedule_id, "admin"):
        return True
    person = roster.people.get(viewer.person_in(schedule_id) or 0)
    return person is not None and person.chief


def visible_tasks(viewer: Viewer, schedule_id: str, roster: Roster) -> set[int] | None:
    """The task ids the viewer may see in one list; None means every task."""
    if sees_all(viewer, schedule_id, roster):
        return None
    me = viewer.person_in(schedule_id)
    return {
        task_id
        for task_id in roster.members
        if me in roster.lead(task_id) + roster.responsible(task_id) + roster.assignees(task_id)
    }


def _row(
    record: ScheduleRecord, task: TaskRecord, now: datetime, lang: str
) -> tuple[Row, Progress]:
    progress = assess(task, schedule=record.schedule, now=now, st=record.time)
    cells = dict(zip(COLUMNS, ledger_row(task, progress, lang), strict=True))
    assert task.task.id is not None
    row = Row(
        schedule_id=record.schedule.id,
        task_id=task.task.id,
        cells=cells,
        state=progress.state,
        colour=colour_of(progress),
        units=task.units,
        leaders=tuple(dict.fromkeys(task.lead + task.responsible)),
        due=progress.due,
        pending_extension=progress.pending_extension is not None,
    )
    return row, progress


@dataclass(frozen=True)
class Filters:
    schedule: str = ""
    unit: str = ""
    leader: str = ""
    status: str = ""
    period: str = ""  # YYYY-MM: due in that month
    q: str = ""

    def keep(self, row: Row) -> bool:
        if self.unit and self.unit not in row.units:
            return False
        if self.leader and self.leader not in row.leaders:
            return False
        if self.status and row.colour != self.status:
            return False
        if self.period and (row.due is None or row.due.strftime("%Y-%m") != self.period):
            return False
        if self.q:
            text = f"{row.cells['ref']} {row.cells['title']} {row.cells['status'] or ''}"
            if self.q.lower() not in text.lower():
                return False
        return True


def dashboard(
    session: Session, viewer: Viewer, filters: Filters, now: datetime, lang: str
) -> Dashboard:
    """The rows the viewer may see, filtered, with the colour counts and overdue per unit."""
    board = Dashboard()
    units: set[str] = set()
    leaders: set[str] = set()
    overdue: Counter[str] = Counter()
    for schedule_id in viewer.schedules:
        if filters.schedule and schedule_id != filters.schedule:
            continue
        schedule = session.get(Schedule, schedule_id)
        if schedule is None:
            continue
        record = load_schedule_record(session, schedule)
        allowed = visible_tasks(viewer, schedule_id, Roster.cached(session, schedule))
        for task in record.tasks:
            if allowed is not None and task.task.id not in allowed:
                continue
            row, _progress = _row(record, task, now, lang)
            units.update(row.units)
            leaders.update(row.leaders)
            if not filters.keep(row):
                continue
            board.total += 1
            board.colours[row.colour] += 1
            if row.state == STATE_OVERDUE:
                for unit in row.units or ("",):
                    overdue[unit] += 1
            if len(board.rows) < ROWS_SHOWN:
                board.rows.append(row)
    board.overdue_by_unit = overdue.most_common()
    board.units, board.leaders = sorted(units), sorted(leaders)
    return board


def _lang(request: Request) -> str:
    return str(request.app.state.settings.lang)


def _filters(request: Request) -> Filters:
    params = request.query_params
    status = params.get("status", "")
    return Filters(
        schedule=params.get("schedule", ""),
        unit=params.get("unit", ""),
        leader=params.get("leader", ""),
        status=status if status in COLOURS else "",
        period=params.get("period", "")[:7],
        q=params.get("q", "").strip()[:100],
    )


def _board_page(request: Request, viewer: Viewer, filters: Filters) -> Response:
    now = request.app.state.clock.now()
    with session_scope(request.app.state.engine) as session:
        board = dashboard(session, viewer, filters, now, _lang(request))
        exportable = [
            sid
            for sid in viewer.schedules
            if (s := session.get(Schedule, sid)) is not None
            and sees_all(viewer, sid, Roster.cached(session, s))
        ]
    most = max((n for _, n in board.overdue_by_unit), default=0)
    return page(
        request,
        "ledger.html",
        {
            "me": viewer,
            "board": board,
            "filters": filters,
            "most": most,
            "exportable": exportable,
            "shown": ROWS_SHOWN,
        },
    )


@router.get("/ledger")
def ledger(request: Request, viewer: Annotated[Viewer, Depends(current_viewer)]) -> Response:
    return _board_page(request, viewer, _filters(request))


@router.get("/s/{schedule_id}")
def schedule_home(
    request: Request, schedule_id: str, viewer: Annotated[Viewer, Depends(require_member)]
) -> Response:
    """One list's dashboard (others get the 403 page)."""
    filters = _filters(request)
    return _board_page(request, viewer, Filters(**{**filters.__dict__, "schedule": schedule_id}))


@router.get("/s/{schedule_id}/export.{fmt}")
def export(
    request: Request,
    schedule_id: str,
    fmt: str,
    viewer: Annotated[Viewer, Depends(require_member)],
) -> Response:
    """The whole list's ledger, built and written exactly as ``dutybot report`` does."""
    if fmt not in EXPORT_TYPES:
        raise Forbidden(fmt)
    now = request.app.state.clock.now()
    lang = _lang(request)
    with session_scope(request.app.state.engine) as session:
        schedule = session.get(Schedule, schedule_id)
        assert schedule is not None  # require_member: the viewer is on this list
        if not sees_all(viewer, schedule_id, Roster.cached(session, schedule)):
            raise Forbidden(schedule_id)
        records = load_records(session, schedule_id)
    ledger_ = build_ledger(records, now=now, lang=lang, filled_by=viewer.name)
    day = now.astimezone(records[0].time.tz)
    name = phrase("report", "default_file", lang, schedule=schedule_id, day=day, ext=fmt)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ledger"
        (write_ledger_xlsx if fmt == "xlsx" else write_ledger_csv)(ledger_, path)
        body = path.read_bytes()
    disposition = f"attachment; filename=\"ledger.{fmt}\"; filename*=UTF-8''{quote(name)}"
    return Response(
        body, media_type=EXPORT_TYPES[fmt], headers={"Content-Disposition": disposition}
    )


# --- a task's page --------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One line of a task's timeline."""

    at: datetime
    kind: str  # a notification kind, or reply_<kind>, or decision
    who: str
    level: str | None = None
    note: str | None = None
    percent: int | None = None
    requested: date | None = None
    decision: str | None = None
    evidence: tuple[Evidence, ...] = ()
    reply_id: int | None = None


def _task_in(
    session: Session, viewer: Viewer, schedule_id: str, task_id: int
) -> tuple[Task, Schedule, Roster]:
    """The task, if it is on this list and the viewer may see it; else a 403."""
    task = session.get(Task, task_id)
    schedule = session.get(Schedule, schedule_id)
    if task is None or schedule is None or task.schedule_id != schedule_id:
        raise Forbidden(schedule_id)
    roster = Roster.cached(session, schedule)
    allowed = visible_tasks(viewer, schedule_id, roster)
    if allowed is not None and task_id not in allowed:
        raise Forbidden(schedule_id)
    return task, schedule, roster


def timeline(session: Session, schedule_id: str, occurrence_ids: list[int]) -> list[Event]:
    """Reminders and escalations sent, answers with their evidence, and decisions, in order."""
    if not occurrence_ids:
        return []
    names = {
        p.id: p.name for p in session.exec(select(Person).where(Person.schedule_id == schedule_id))
    }
    events: list[Event] = []
    for note in session.exec(
        select(Notification)
        .where(col(Notification.occurrence_id).in_(occurrence_ids))
        .where(Notification.state == "sent")
        .where(col(Notification.kind).in_(TIMELINE_KINDS))
    ):
        assert note.sent_at is not None
        events.append(Event(note.sent_at, note.kind, names.get(note.person_id, ""), note.level))
    rows = list(session.exec(select(Reply).where(col(Reply.occurrence_id).in_(occurrence_ids))))
    evidence: dict[int, list[Evidence]] = {}
    for item in session.exec(
        select(Evidence).where(col(Evidence.reply_id).in_([r.id for r in rows]))
    ):
        evidence.setdefault(item.reply_id, []).append(item)
    for reply in rows:
        events.append(
            Event(
                reply.created_at,
                f"reply_{reply.kind}",
                names.get(reply.person_id, ""),
                note=reply.note,
                percent=reply.percent,
                requested=reply.requested_date,
                decision=reply.decision,
                evidence=tuple(evidence.get(reply.id or 0, ())),
                reply_id=reply.id,
            )
        )
        if reply.decided_at is not None:
            events.append(
                Event(
                    reply.decided_at,
                    "decision",
                    names.get(reply.decided_by_id or 0, ""),
                    requested=reply.requested_date,
                    decision=reply.decision,
                )
            )
    return sorted(events, key=lambda e: e.at)


def _chased_occurrence(occurrences: list[Occurrence], today: date) -> Occurrence | None:
    """The open occurrence a 催办 is about: the oldest begun one."""
    begun = [o for o in occurrences if o.status == OPEN and o.period_start <= today]
    return min(begun, key=lambda o: o.due_at) if begun else None


@router.get("/s/{schedule_id}/t/{task_id}")
def task_page(
    request: Request,
    schedule_id: str,
    task_id: int,
    viewer: Annotated[Viewer, Depends(require_member)],
) -> Response:
    now = request.app.state.clock.now()
    lang = _lang(request)
    with session_scope(request.app.state.engine) as session:
        task, schedule, roster = _task_in(session, viewer, schedule_id, task_id)
        record = load_schedule_record(session, schedule)
        task_record = next(t for t in record.tasks if t.task.id == task_id)
        row, progress = _row(record, task_record, now, lang)
        occurrences = list(task_record.occurrences)
        events = timeline(session, schedule_id, [o.id for o in occurrences if o.id is not None])
        me = viewer.person_in(schedule_id)
        pending = [e for e in events if e.kind == "reply_extension" and e.decision is None]
        chased = _chased_occurrence(occurrences, progress.today)
        leaders = set(roster.lead(task_id) + roster.responsible(task_id) + roster.chief())
        context: dict[str, Any] = {
            "me": viewer,
            "schedule": schedule,
            "task": task,
            "row": row,
            "events": events,
            "tz": record.time.tz,
            "pending": pending,
            "may_decide": me in roster.lead(task_id),
            "may_nudge": chased is not None and me in leaders,
            "message": request.query_params.get("msg", ""),
            "refused": phrase("chat_refusals", code, lang)
            if (code := request.query_params.get("refused", "")) in REFUSAL_CODES
            else "",
        }
    return page(request, "task.html", context)


REFUSAL_CODES = frozenset(
    {"not_found", "not_assigned", "closed", "not_lead", "not_leader", "extension_stale"}
)


def _back(schedule_id: str, task_id: int, **query: str) -> RedirectResponse:
    tail = "&".join(f"{k}={quote(v)}" for k, v in query.items())
    return RedirectResponse(f"/s/{schedule_id}/t/{task_id}?{tail}", status_code=303)


@router.post("/s/{schedule_id}/t/{task_id}/extension/{reply_id}")
def decide(
    request: Request,
    schedule_id: str,
    task_id: int,
    reply_id: int,
    viewer: Annotated[Viewer, Depends(require_member)],
    decision: Annotated[str, Form()],
) -> Response:
    """批准 / 驳回 a pending extension: the lead official only (the domain checks)."""
    now = request.app.state.clock.now()
    try:
        with session_scope(request.app.state.engine) as session:
            _task_in(session, viewer, schedule_id, task_id)
            reply = session.get(Reply, reply_id)
            occ = session.get(Occurrence, reply.occurrence_id) if reply else None
            if occ is None or occ.task_id != task_id:
                raise replies.ReplyRefused("not_found")
            replies.decide_extension(
                session,
                reply_id=reply_id,
                person_id=viewer.person_in(schedule_id) or 0,
                now=now,
                approve=decision == "approve",
                via=WEB,
            )
    except replies.ReplyRefused as refused:
        return _back(schedule_id, task_id, refused=refused.code)
    return _back(schedule_id, task_id, msg="approved" if decision == "approve" else "denied")


@router.post("/s/{schedule_id}/t/{task_id}/nudge")
def nudge(
    request: Request,
    schedule_id: str,
    task_id: int,
    viewer: Annotated[Viewer, Depends(require_member)],
) -> Response:
    """催办: the reminder again to the assignees, in the leader's name."""
    now = request.app.state.clock.now()
    try:
        with session_scope(request.app.state.engine) as session:
            _task_in(session, viewer, schedule_id, task_id)
            rows = list(session.exec(select(Occurrence).where(Occurrence.task_id == task_id)))
            schedule = session.get(Schedule, schedule_id)
            assert schedule is not None
            chased = _chased_occurrence(rows, schedule_time(schedule).local_date(now))
            if chased is None or chased.id is None:
                raise replies.ReplyRefused("closed")
            replies.nudge(
                session,
                occurrence_id=chased.id,
                person_id=viewer.person_in(schedule_id) or 0,
                now=now,
                via=WEB,
            )
    except replies.ReplyRefused as refused:
        return _back(schedule_id, task_id, refused=refused.code)
    return _back(schedule_id, task_id, msg="nudged")


@router.get("/s/{schedule_id}/evidence/{evidence_id}")
def evidence_file(
    request: Request,
    schedule_id: str,
    evidence_id: int,
    viewer: Annotated[Viewer, Depends(require_member)],
) -> Response:
    """A photo or file sent as evidence, to whoever may see its task."""
    with session_scope(request.app.state.engine) as session:
        item = session.get(Evidence, evidence_id)
        reply = session.get(Reply, item.reply_id) if item else None
        occ = session.get(Occurrence, reply.occurrence_id) if reply else None
        if item is None or occ is None or not item.local_path:
            raise Forbidden(schedule_id)
        _task_in(session, viewer, schedule_id, occ.task_id)
        path, mime = Path(item.local_path), item.mime_type
    if not path.is_file():
        raise Forbidden(schedule_id)
    return FileResponse(path, media_type=mime or None)
