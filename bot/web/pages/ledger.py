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
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy import func
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
    AuditEvent,
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
ROWS_SHOWN = 100  # the page lists this many rows; the counts and chart cover all of them
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


_CHASED: dict[str, tuple[Roster, dict[int, set[int]]]] = {}
_CHASED_LOCK = threading.Lock()


def _chased_index(schedule_id: str, roster: Roster) -> dict[int, set[int]]:
    """person id -> the tasks they lead, answer for or are chased for, built once per roster
    (a roster changes only with an import, and Roster.cached then gives a new one)."""
    with _CHASED_LOCK:
        found = _CHASED.get(schedule_id)
    if found is not None and found[0] is roster:
        return found[1]
    index: dict[int, set[int]] = {}
    for task_id in roster.members:
        for pid in roster.lead(task_id) + roster.responsible(task_id) + roster.assignees(task_id):
            index.setdefault(pid, set()).add(task_id)
    with _CHASED_LOCK:
        _CHASED[schedule_id] = (roster, index)
    return index


def visible_tasks(viewer: Viewer, schedule_id: str, roster: Roster) -> set[int] | None:
    """The task ids the viewer may see in one list; None means every task."""
    if sees_all(viewer, schedule_id, roster):
        return None
    me = viewer.person_in(schedule_id)
    return _chased_index(schedule_id, roster).get(me or 0, set())


@dataclass(frozen=True)
class Judged:
    """One task as judged for one day: what the filters and counts need (the cells are
    worded only for the rows a page shows)."""

    record: TaskRecord
    progress: Progress
    colour: str
    leaders: tuple[str, ...]


def judge(record: ScheduleRecord, task: TaskRecord, now: datetime) -> Judged:
    progress = assess(task, schedule=record.schedule, now=now, st=record.time)
    leaders = tuple(dict.fromkeys(task.lead + task.responsible))
    return Judged(task, progress, colour_of(progress), leaders)


def row_of(schedule_id: str, judged: Judged, lang: str) -> Row:
    """The dashboard's row: the export's own cells (:func:`ledger_row`)."""
    task = judged.record
    assert task.task.id is not None
    return Row(
        schedule_id=schedule_id,
        task_id=task.task.id,
        cells=dict(zip(COLUMNS, ledger_row(task, judged.progress, lang), strict=True)),
        state=judged.progress.state,
        colour=judged.colour,
        units=task.units,
        leaders=judged.leaders,
        due=judged.progress.due,
        pending_extension=judged.progress.pending_extension is not None,
    )


@dataclass
class _Judgement:
    """One list judged: the records, the judgement of each task, and the store's state
    they reflect (see :func:`judged_schedule`)."""

    stamp: tuple[Any, ...]  # the import: anything else means reading everything again
    newest: tuple[int, int, int, int]  # newest audit event, occurrence, reply, evidence
    day: tuple[date, bool]  # the local day, and whether its working hours have ended
    record: ScheduleRecord
    judged: list[Judged]


_JUDGED: dict[tuple[str, str], _Judgement] = {}
_JUDGED_LOCK = threading.Lock()
REREAD_LIMIT = 500  # more changed tasks than this: read the whole list again


def _newest(session: Session) -> tuple[int, int, int, int]:
    found = [
        session.exec(select(func.max(model.id))).one() or 0  # type: ignore[attr-defined]
        for model in (AuditEvent, Occurrence, Reply, Evidence)
    ]
    return found[0], found[1], found[2], found[3]


def _changed_tasks(
    session: Session, schedule_id: str, since: tuple[int, int, int, int]
) -> set[int]:
    """Tasks touched since ``since``: every answer, decision and cancellation writes an
    audit event naming its task; materialising adds occurrences; answers add replies and
    evidence."""
    audit, occurrence, reply, evidence = since
    changed: set[int] = set()
    for task_id, occ_id in session.exec(
        select(AuditEvent.task_id, AuditEvent.occurrence_id).where(
            AuditEvent.schedule_id == schedule_id, col(AuditEvent.id) > audit
        )
    ):
        if task_id is not None:
            changed.add(task_id)
        elif occ_id is not None and (occ := session.get(Occurrence, occ_id)) is not None:
            changed.add(occ.task_id)
    changed.update(
        session.exec(
            select(Occurrence.task_id).where(
                Occurrence.schedule_id == schedule_id, col(Occurrence.id) > occurrence
            )
        )
    )
    changed.update(
        session.exec(
            select(Occurrence.task_id)
            .join(Reply, col(Reply.occurrence_id) == Occurrence.id)
            .where(Occurrence.schedule_id == schedule_id, col(Reply.id) > reply)
        )
    )
    changed.update(
        session.exec(
            select(Occurrence.task_id)
            .join(Reply, col(Reply.occurrence_id) == Occurrence.id)
            .join(Evidence, col(Evidence.reply_id) == Reply.id)
            .where(Occurrence.schedule_id == schedule_id, col(Evidence.id) > evidence)
        )
    )
    return changed


def judged_schedule(
    session: Session, schedule: Schedule, now: datetime
) -> tuple[ScheduleRecord, list[Judged]]:
    """Every task of a list judged as of ``now``, remembered per process and brought up to
    date from the store at each call (the database stays the only truth): a new import reads
    everything again; new audit events, occurrences, replies or evidence re-read only their
    tasks; a new day, or the end of the working day (overdue flips only then), re-judges the
    remembered records.  The state is read before the rows, so a change made meanwhile is
    read again next time, never missed."""
    bind = session.get_bind()
    cache = (str(getattr(bind, "engine", bind).url), schedule.id)
    st = schedule_time(schedule)
    today = st.local_date(now)
    stamp = (schedule.imported_at, schedule.content_hash)
    newest = _newest(session)
    day = (today, now > st.due_at(today))
    with _JUDGED_LOCK:
        found = _JUDGED.get(cache)
    if found is not None and found.stamp == stamp and found.newest != newest:
        changed = _changed_tasks(session, schedule.id, found.newest)
        if len(changed) > REREAD_LIMIT:
            found = None
        elif changed:
            part = load_schedule_record(session, schedule, changed)
            fresh = {t.task.id: t for t in part.tasks}
            tasks = tuple(fresh.get(t.task.id, t) for t in found.record.tasks)
            record = ScheduleRecord(found.record.schedule, found.record.time, tasks)
            judged = [
                judge(record, fresh[j.record.task.id], now) if j.record.task.id in fresh else j
                for j in found.judged
            ]
            found = _Judgement(stamp, newest, found.day, record, judged)
        else:
            found = _Judgement(stamp, newest, found.day, found.record, found.judged)
    if found is None or found.stamp != stamp:
        record = load_schedule_record(session, schedule)
        judged = [judge(record, t, now) for t in record.tasks]
        found = _Judgement(stamp, newest, day, record, judged)
    elif found.day != day:
        judged = [judge(found.record, t, now) for t in found.record.tasks]
        found = _Judgement(stamp, newest, day, found.record, judged)
    with _JUDGED_LOCK:
        _JUDGED[cache] = found
    return found.record, found.judged


@dataclass(frozen=True)
class Filters:
    schedule: str = ""
    unit: str = ""
    leader: str = ""
    status: str = ""
    period: str = ""  # YYYY-MM: due in that month
    q: str = ""

    def keep(self, judged: Judged) -> bool:
        task, due = judged.record, judged.progress.due
        if self.unit and self.unit not in task.units:
            return False
        if self.leader and self.leader not in judged.leaders:
            return False
        if self.status and judged.colour != self.status:
            return False
        if self.period and (due is None or due.strftime("%Y-%m") != self.period):
            return False
        return not self.q or self.q.lower() in f"{task.task.ref} {task.task.title}".lower()


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
        _record, judged = judged_schedule(session, schedule, now)
        allowed = visible_tasks(viewer, schedule_id, Roster.cached(session, schedule))
        for one in judged:
            if allowed is not None and one.record.task.id not in allowed:
                continue
            units.update(one.record.units)
            leaders.update(one.leaders)
            if not filters.keep(one):
                continue
            board.total += 1
            board.colours[one.colour] += 1
            if one.progress.state == STATE_OVERDUE:
                for unit in one.record.units or ("",):
                    overdue[unit] += 1
            if len(board.rows) < ROWS_SHOWN:
                board.rows.append(row_of(schedule_id, one, lang))
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
            "may_load": any(viewer.has(sid, "admin") for sid in viewer.schedules),
            "imported": request.query_params.get("imported") == "1",
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
        record = load_schedule_record(session, schedule, [task_id])  # this task only
        task_record = next(t for t in record.tasks if t.task.id == task_id)
        judged = judge(record, task_record, now)
        row, progress = row_of(schedule_id, judged, lang), judged.progress
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
