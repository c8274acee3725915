"""The ledger (台账): the original list's columns plus 工作进度, judged as of ``now``.

Pure: :func:`assess` decides how a task stands from its records, the calendar and an
injected ``now``; :func:`build_ledger` turns that into cells (text from
``message_templates/<lang>/report.j2``).  Writing files is :mod:`bot.reports.writers`.

For a recurring task the ledger describes the current period (the one whose period
contains today, else the latest begun) and still flags earlier periods left open past their
due day: a missed May must not disappear from the ledger because June has begun.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from bot.materialise import task_timing
from bot.occurrences import ScheduleTime, plan
from bot.reports.records import ReplyRecord, ScheduleRecord, TaskRecord
from bot.store.models import CANCELLED, DONE, OPEN, Occurrence, Schedule, Task
from bot.texts import phrase

Cell = str | int | date | None

# the original list's columns first, then 工作进度 and the columns it is made of
COLUMNS: tuple[str, ...] = (
    "ref",
    "title",
    "lead",
    "responsible",
    "units",
    "partners",
    "deadline",
    "progress",
    "status",
    "due",
    "completed",
    "times",
    "overdue",
    "evidence",
    "note",
)
SUMMARY_COLUMNS: tuple[str, ...] = (
    "schedule",
    "title",
    "issued_by",
    "issued_on",
    "tasks",
    "done",
    "open",
    "overdue",
    "cancelled",
    "not_started",
)

# how a task stands; also the summary sheet's counters
STATE_DONE = "done"
STATE_OPEN = "open"
STATE_OVERDUE = "overdue"
STATE_CANCELLED = "cancelled"
STATE_NOT_STARTED = "not_started"
STATES = (STATE_DONE, STATE_OPEN, STATE_OVERDUE, STATE_CANCELLED, STATE_NOT_STARTED)
TASK_REMOVED = "task_removed"
PLAN_AHEAD_DAYS = 400  # far enough to reach the end of any yearly period


@dataclass(frozen=True)
class Note:
    """The latest thing anyone wrote about a task: what the 工作进度 column quotes."""

    day: date
    person: str
    kind: str
    text: str


@dataclass(frozen=True)
class Progress:
    """How one task stands as of ``now``; everything the templates need to word it."""

    state: str
    kind: str  # deadline | recurring | ongoing
    due: date | None = None
    extended_to: date | None = None
    pending_extension: date | None = None
    times_done: int = 0
    times_required: int = 1
    current_overdue: bool = False
    overdue_days: int | None = None
    earlier_overdue: int = 0
    completed_on: date | None = None
    percent: int | None = None
    evidence: int = 0
    note: Note | None = None
    reason: str | None = None


def effective_due(occ: Occurrence) -> date:
    """An approved extension moves the due day; the original stays on the row."""
    return occ.extended_to or occ.due_date


def is_overdue(occ: Occurrence, now: datetime, st: ScheduleTime) -> bool:
    """Open past the end of its (possibly extended) due working day."""
    return occ.status == OPEN and now > st.due_at(effective_due(occ))


def current_occurrence(
    kind: str, occurrences: tuple[Occurrence, ...], today: date
) -> Occurrence | None:
    """The occurrence the ledger describes.

    A deadline task has one live row (a cancelled, re-planned one may sit beside it).  A
    recurring task shows the period containing today, else the latest one begun; None
    when its first period lies ahead.
    """
    if not occurrences:
        return None

    def pick(rows: list[Occurrence]) -> Occurrence:
        # prefer live rows; among those, the latest period
        return max(rows, key=lambda o: (o.status != CANCELLED, o.period_start))

    if kind == "deadline":
        return pick(list(occurrences))
    containing = [o for o in occurrences if o.period_start <= today <= o.period_end]
    if containing:
        return pick(containing)
    begun = [o for o in occurrences if o.period_start <= today]
    return pick(begun) if begun else None


def _latest_note(replies: tuple[ReplyRecord, ...], st: ScheduleTime) -> Note | None:
    for reply in reversed(replies):
        if reply.note and reply.note.strip():
            day = st.local_date(reply.created_at)
            return Note(day, reply.person, reply.kind, reply.note.strip())
    return None


def planned_occurrences(
    task: Task, schedule: Schedule, st: ScheduleTime, today: date
) -> list[Occurrence]:
    """The periods as planned, from the first planned day to well beyond today.

    Rows exist only a few weeks ahead (and only as far as the worker has run), but a
    yearly duty's period began long before its row will: the ledger should say "in
    progress, due 12-30", not "not started".  These rows are never stored.
    """
    if task.kind == "deadline" or task.id is None:
        return []
    window_end = today + timedelta(days=PLAN_AHEAD_DAYS)
    planned = plan(task_timing(task, schedule), st.calendar, schedule.planned_from, window_end)
    return [
        Occurrence(
            task_id=task.id,
            schedule_id=schedule.id,
            kind=p.kind,
            period_start=p.period_start,
            period_end=p.period_end,
            due_date=p.due_date,
            due_at=st.due_at(p.due_date),
            times_required=p.times_required,
            created_at=datetime.min.replace(tzinfo=UTC),
        )
        for p in planned
    ]


def assess(record: TaskRecord, *, schedule: Schedule, now: datetime, st: ScheduleTime) -> Progress:
    """Judge one task as of ``now`` (aware); pure, so any past or future day can be replayed."""
    task = record.task
    today = st.local_date(now)
    evidence = sum(r.evidence for r in record.replies)
    note = _latest_note(record.replies, st)
    if not task.active:
        return Progress(
            STATE_CANCELLED, task.kind, evidence=evidence, note=note, reason=TASK_REMOVED
        )
    current = current_occurrence(task.kind, record.occurrences, today)
    if current is None or not current.period_start <= today <= current.period_end:
        # the period of today may not be materialised yet: complete the rows with the plan
        stored = {o.period_start for o in record.occurrences}
        planned = [
            o
            for o in planned_occurrences(task, schedule, st, today)
            if o.period_start not in stored
        ]
        current = current_occurrence(task.kind, (*record.occurrences, *planned), today)
        if current is None:
            ahead = [o.due_date for o in planned if o.period_start > today]
            due = min(ahead) if ahead else None
            return Progress(STATE_NOT_STARTED, task.kind, due=due, evidence=evidence, note=note)
    current_overdue = is_overdue(current, now, st)
    overdue_rows = [o for o in record.occurrences if is_overdue(o, now, st)]
    earlier = [o for o in overdue_rows if o is not current]
    late = [*earlier, current] if current_overdue else earlier
    days = [st.calendar.workdays_after(effective_due(o), today) for o in late]
    mine = [r for r in record.replies if current.id and r.occurrence_id == current.id]
    percents = [r.percent for r in mine if r.kind == "progress" and r.percent is not None]
    pending = [r.requested_date for r in mine if r.kind == "extension" and r.decision is None]
    if current_overdue or earlier:
        state = STATE_OVERDUE
    elif current.status == CANCELLED:
        state = STATE_CANCELLED
    elif current.status == DONE:
        state = STATE_DONE
    else:
        state = STATE_OPEN
    completed = current.completed_at if current.status == DONE else None
    return Progress(
        state=state,
        kind=task.kind,
        due=effective_due(current),
        extended_to=current.extended_to,
        pending_extension=pending[-1] if pending else None,
        times_done=current.times_done,
        times_required=current.times_required,
        current_overdue=current_overdue,
        overdue_days=max(days) if days else None,
        earlier_overdue=len(earlier),
        completed_on=st.local_date(completed) if completed else None,
        percent=percents[-1] if percents else None,
        evidence=evidence,
        note=note,
        reason=current.status_reason if current.status == CANCELLED else None,
    )


def deadline_cell(task: Task, lang: str) -> Cell:
    """完成时限 as the original reads: a real date for a deadline, words for a duty."""
    if task.kind == "deadline" and task.due is not None:
        return task.due  # a date cell, so Excel can sort and filter it
    by_day = None if task.by == "end" else int(task.by.split()[1])
    return phrase(
        "report",
        "deadline",
        lang,
        kind=task.kind,
        every=task.every,
        by_day=by_day,
        times=task.times,
    )


def ledger_row(record: TaskRecord, progress: Progress, lang: str) -> tuple[Cell, ...]:
    """The cells of one task, in :data:`COLUMNS` order."""
    task = record.task
    status = phrase("report", "status", lang, p=progress)
    names = {
        key: phrase("report", "names", lang, items=list(getattr(record, key)))
        for key in ("lead", "responsible", "units", "partners")
    }
    note = phrase("report", "note", lang, note=progress.note) if progress.note else None
    cells: dict[str, Cell] = {
        "ref": task.ref,
        "title": task.title,
        **names,
        "deadline": deadline_cell(task, lang),
        "progress": phrase("report", "progress", lang, p=progress, status=status, note=note),
        "status": status,
        "due": progress.due if progress.state != STATE_CANCELLED else None,
        "completed": progress.completed_on,
        "times": (
            f"{progress.times_done}/{progress.times_required}"
            if task.kind != "deadline"
            and progress.state not in (STATE_NOT_STARTED, STATE_CANCELLED)
            else None
        ),
        "overdue": progress.overdue_days,
        "evidence": progress.evidence,
        "note": note,
    }
    # an empty phrase is an empty cell, not a cell holding ""
    return tuple(None if cells[key] == "" else cells[key] for key in COLUMNS)


@dataclass(frozen=True)
class LedgerSheet:
    """One schedule's rows; ``states`` lets a writer colour overdue rows."""

    schedule_id: str
    heading: str
    rows: tuple[tuple[Cell, ...], ...]
    states: tuple[str, ...]


@dataclass(frozen=True)
class Ledger:
    columns: tuple[str, ...]
    headers: tuple[str, ...]
    schedule_header: str
    sheets: tuple[LedgerSheet, ...]
    summary_name: str
    summary_heading: str
    summary_headers: tuple[str, ...]
    summary_rows: tuple[tuple[Cell, ...], ...]

    @property
    def task_count(self) -> int:
        return sum(len(s.rows) for s in self.sheets)


def build_ledger(records: list[ScheduleRecord], *, now: datetime, lang: str) -> Ledger:
    """Every schedule's sheet and the summary, as cells; no I/O."""
    sheets: list[LedgerSheet] = []
    summary: list[tuple[Cell, ...]] = []
    totals: Counter[str] = Counter()
    for record in records:
        schedule = record.schedule
        rows, states = [], []
        for task_record in record.tasks:
            progress = assess(task_record, schedule=schedule, now=now, st=record.time)
            rows.append(ledger_row(task_record, progress, lang))
            states.append(progress.state)
        counts = Counter(states)
        totals.update(counts)
        summary.append(
            (
                schedule.id,
                schedule.title,
                schedule.issued_by,
                schedule.issued_on,
                len(rows),
                *(counts.get(state, 0) for state in STATES),
            )
        )
        local_now = now.astimezone(record.time.tz)
        heading = phrase("report", "sheet_heading", lang, title=schedule.title, as_of=local_now)
        sheets.append(LedgerSheet(schedule.id, heading, tuple(rows), tuple(states)))
    if len(records) > 1:
        total_label = phrase("report", "total", lang)
        task_total = sum(len(s.rows) for s in sheets)
        summary.append(
            (total_label, None, None, None, task_total, *(totals.get(s, 0) for s in STATES))
        )
    tz = records[0].time.tz if records else None
    as_of = now.astimezone(tz) if tz else now
    return Ledger(
        columns=COLUMNS,
        headers=tuple(phrase("report", "column", lang, key=key) for key in COLUMNS),
        schedule_header=phrase("report", "column", lang, key="schedule"),
        sheets=tuple(sheets),
        summary_name=phrase("report", "summary_sheet", lang),
        summary_heading=phrase("report", "summary_heading", lang, as_of=as_of),
        summary_headers=tuple(
            phrase("report", "summary_column", lang, key=key) for key in SUMMARY_COLUMNS
        ),
        summary_rows=tuple(summary),
    )
