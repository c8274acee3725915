"""The ledger (台账): the original list's columns, judged as of ``now``, worded for people.

Pure: :func:`assess` decides how a task stands from its records, the calendar and an
injected ``now``; :func:`build_ledger` turns that into cells (every word from
``message_templates/<lang>/report.j2``).  Writing files is :mod:`bot.reports.writers`.

The columns a reader prints come first (序号 … 往期情况) and say everything in words:
状态 is the standing, 工作进度 what the officials reported (never a repeat of 状态), 往期情况
the earlier periods of a recurring duty.  The columns after them are the same facts as data
(dates, counts) for sorting and filtering; they are not printed.

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

# the printed document first, then the same facts as data for sorting and filtering
PRINTED_COLUMNS: tuple[str, ...] = (
    "ref",
    "title",
    "lead",
    "responsible",
    "units",
    "partners",
    "deadline",
    "status",
    "progress",
    "history",
)
DATA_COLUMNS: tuple[str, ...] = ("due", "completed", "times", "overdue", "evidence")
COLUMNS: tuple[str, ...] = PRINTED_COLUMNS + DATA_COLUMNS
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
    "undated",
)

# how a task stands; also the summary sheet's counters
STATE_DONE = "done"
STATE_OPEN = "open"
STATE_OVERDUE = "overdue"
STATE_CANCELLED = "cancelled"
STATE_NOT_STARTED = "not_started"
STATE_UNDATED = "undated"  # 时限待定: in the list, but nothing to chase yet
STATES = (
    STATE_DONE,
    STATE_OPEN,
    STATE_OVERDUE,
    STATE_CANCELLED,
    STATE_NOT_STARTED,
    STATE_UNDATED,
)
UNDATED = "undated"  # Task.kind of a task whose document gives no deadline
TASK_REMOVED = "task_removed"
PLAN_AHEAD_DAYS = 400  # far enough to reach the end of any yearly period
ENTRIES_SHOWN = 3  # 工作进度 quotes the latest few answers; the audit trail has them all
NOTE_LIMIT = 100  # characters of one note in a cell (the audit trail keeps it whole)

# what became of an earlier period (往期情况)
PERIOD_DONE = "done"
PERIOD_LATE = "late"  # done, after its due day
PERIOD_MISSED = "missed"  # still open past its due day
PERIOD_OPEN = "open"
PERIOD_CANCELLED = "cancelled"


@dataclass(frozen=True)
class Entry:
    """One answer an official gave, as 工作进度 words it."""

    day: date
    person: str
    kind: str  # done | progress | extension | not_mine
    note: str | None = None
    percent: int | None = None
    requested: date | None = None
    decision: str | None = None  # approved | denied; None while waiting
    decided_by: str | None = None
    evidence: int = 0


@dataclass(frozen=True)
class Period:
    """One earlier period of a recurring duty, for 往期情况."""

    start: date
    end: date
    due: date
    outcome: str  # PERIOD_*
    times_done: int = 0
    times_required: int = 1
    completed_on: date | None = None
    overdue_days: int | None = None


@dataclass(frozen=True)
class Progress:
    """How one task stands as of ``now``; everything the templates need to word it."""

    state: str
    kind: str  # deadline | recurring | ongoing | undated
    today: date
    every: str | None = None  # the period's length, for naming it (6月, 第2季度, 上半年)
    period_start: date | None = None
    period_end: date | None = None
    due: date | None = None
    extended_to: date | None = None
    pending_extension: date | None = None
    times_done: int = 0
    times_required: int = 1
    current_overdue: bool = False
    overdue_days: int | None = None
    earlier_overdue: int = 0
    completed_on: date | None = None
    completed_late: bool = False
    percent: int | None = None
    evidence: int = 0
    entries: tuple[Entry, ...] = ()
    earlier_entries: int = 0  # answers older than the ones quoted
    history: tuple[Period, ...] = ()
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


def planned_occurrences(
    task: Task, schedule: Schedule, st: ScheduleTime, today: date
) -> list[Occurrence]:
    """The periods as planned, from the first planned day to well beyond today.

    Rows exist only a few weeks ahead (and only as far as the worker has run), but a
    yearly duty's period began long before its row will: the ledger should say "in
    progress, due 12-30", not "not started".  These rows are never stored.
    """
    if task.kind in ("deadline", UNDATED) or task.id is None:
        return []
    window_end = today + timedelta(days=PLAN_AHEAD_DAYS)
    planned = plan(task_timing(task, schedule), st.calendar, schedule.planned_from, window_end)
    # model_construct: never stored, so no validation (a sixth of the cost; a 5,000-task
    # ledger builds ~14,000 of these)
    return [
        Occurrence.model_construct(
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


def _entry(reply: ReplyRecord, st: ScheduleTime) -> Entry:
    # the template ends each answer with its own full stop
    note = (reply.note or "").strip().rstrip("。．.；;，,！!") or None
    if note and len(note) > NOTE_LIMIT:
        note = note[: NOTE_LIMIT - 1] + "…"
    return Entry(
        day=st.local_date(reply.created_at),
        person=reply.person,
        kind=reply.kind,
        note=note,
        percent=reply.percent,
        requested=reply.requested_date,
        decision=reply.decision,
        decided_by=reply.decided_by,
        evidence=reply.evidence,
    )


def _completed_late(occ: Occurrence, st: ScheduleTime) -> bool:
    return occ.completed_at is not None and occ.completed_at > st.due_at(effective_due(occ))


def _period(occ: Occurrence, now: datetime, st: ScheduleTime, today: date) -> Period:
    """What became of one earlier period."""
    completed = st.local_date(occ.completed_at) if occ.completed_at else None
    overdue_days = None
    if occ.status == CANCELLED:
        outcome = PERIOD_CANCELLED
    elif occ.status == DONE:
        outcome = PERIOD_LATE if _completed_late(occ, st) else PERIOD_DONE
    elif is_overdue(occ, now, st):
        outcome = PERIOD_MISSED
        overdue_days = st.calendar.workdays_after(effective_due(occ), today)
    else:
        outcome = PERIOD_OPEN
    return Period(
        start=occ.period_start,
        end=occ.period_end,
        due=effective_due(occ),
        outcome=outcome,
        times_done=occ.times_done,
        times_required=occ.times_required,
        completed_on=completed,
        overdue_days=overdue_days,
    )


def _every(task: Task) -> str | None:
    """The length of one period: the task's own, or the progress-check period of a duty."""
    if task.kind == "ongoing":
        return str((task.policy or {}).get("ongoing_check", "month"))
    return task.every


def assess(record: TaskRecord, *, schedule: Schedule, now: datetime, st: ScheduleTime) -> Progress:
    """Judge one task as of ``now`` (aware); pure, so any past or future day can be replayed."""
    task = record.task
    today = st.local_date(now)
    every = _every(task)
    if not task.active:
        return Progress(STATE_CANCELLED, task.kind, today, every, reason=TASK_REMOVED)
    if task.kind == UNDATED:
        return Progress(STATE_UNDATED, task.kind, today)
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
            ahead = [o for o in planned if o.period_start > today]
            first = min(ahead, key=lambda o: o.period_start) if ahead else None
            return Progress(
                STATE_NOT_STARTED,
                task.kind,
                today,
                every,
                period_start=first.period_start if first else None,
                period_end=first.period_end if first else None,
                due=first.due_date if first else None,
            )
    current_overdue = is_overdue(current, now, st)
    overdue_rows = [o for o in record.occurrences if is_overdue(o, now, st)]
    earlier = [o for o in overdue_rows if o is not current]
    late = [*earlier, current] if current_overdue else earlier
    days = [st.calendar.workdays_after(effective_due(o), today) for o in late]
    periodic = task.kind != "deadline"
    # a deadline's answers are the task's (a re-planned row keeps them); a duty's, the period's
    replies = [r for r in record.replies if not periodic or r.occurrence_id == current.id]
    percents = [r.percent for r in replies if r.kind == "progress" and r.percent is not None]
    pending = [r.requested_date for r in replies if r.kind == "extension" and r.decision is None]
    entries = [_entry(r, st) for r in replies]
    history = tuple(
        _period(o, now, st, today)
        for o in record.occurrences
        if periodic and o.period_start < current.period_start
    )
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
        today=today,
        every=every,
        period_start=current.period_start,
        period_end=current.period_end,
        due=effective_due(current),
        extended_to=current.extended_to,
        pending_extension=pending[-1] if pending else None,
        times_done=current.times_done,
        times_required=current.times_required,
        current_overdue=current_overdue,
        overdue_days=max(days) if days else None,
        earlier_overdue=len(earlier),
        completed_on=st.local_date(completed) if completed else None,
        completed_late=completed is not None and _completed_late(current, st),
        percent=percents[-1] if percents else None,
        evidence=sum(r.evidence for r in replies),
        entries=tuple(entries[-ENTRIES_SHOWN:]),
        earlier_entries=max(0, len(entries) - ENTRIES_SHOWN),
        history=history,
        reason=current.status_reason if current.status == CANCELLED else None,
    )


def deadline_cell(task: Task, lang: str) -> Cell:
    """完成时限 as the document words it; else a real date for a deadline, words for a duty."""
    text = str((task.spec or {}).get("deadline_text") or "").strip()
    if text:
        return text
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
    names = {
        key: phrase("report", "names", lang, items=list(getattr(record, key)))
        for key in ("lead", "responsible", "units", "partners")
    }
    dated = progress.state not in (STATE_NOT_STARTED, STATE_CANCELLED, STATE_UNDATED)
    cells: dict[str, Cell] = {
        "ref": task.ref,
        "title": task.title,
        **names,
        "deadline": deadline_cell(task, lang),
        "status": phrase("report", "status", lang, p=progress),
        "progress": phrase("report", "progress", lang, p=progress),
        "history": phrase("report", "history", lang, p=progress),
        "due": progress.due if dated else None,
        "completed": progress.completed_on,
        "times": (
            f"{progress.times_done}/{progress.times_required}"
            if task.kind != "deadline" and dated
            else None
        ),
        "overdue": progress.overdue_days,
        "evidence": progress.evidence,
    }
    # an empty phrase is an empty cell, not a cell holding ""
    return tuple(None if cells[key] == "" else cells[key] for key in COLUMNS)


@dataclass(frozen=True)
class LedgerSheet:
    """One schedule's rows and the lines around them; ``states`` lets a writer tint rows."""

    schedule_id: str
    heading: str
    filled: tuple[str, str, str]  # 填报单位 / 填报人 / 填报日期
    footnote: str
    rows: tuple[tuple[Cell, ...], ...]
    states: tuple[str, ...]


@dataclass(frozen=True)
class Ledger:
    columns: tuple[str, ...]
    printed: int  # the first ``printed`` columns are the document; the rest are data
    headers: tuple[str, ...]
    schedule_header: str
    sheets: tuple[LedgerSheet, ...]
    summary_name: str
    summary_heading: str
    summary_filled: tuple[str, str, str]
    summary_footnote: str
    summary_headers: tuple[str, ...]
    summary_rows: tuple[tuple[Cell, ...], ...]

    @property
    def task_count(self) -> int:
        return sum(len(s.rows) for s in self.sheets)


def _filled(lang: str, unit: str | None, name: str | None, day: date) -> tuple[str, str, str]:
    """The 填报单位 / 填报人 / 填报日期 line under a title; blanks are lines to write on."""
    return (
        phrase("report", "filled_unit", lang, unit=unit),
        phrase("report", "filled_by", lang, name=name),
        phrase("report", "filled_on", lang, day=day),
    )


def build_ledger(
    records: list[ScheduleRecord], *, now: datetime, lang: str, filled_by: str | None = None
) -> Ledger:
    """Every schedule's sheet and the summary, as cells; no I/O.

    ``filled_by`` is the 填报人 line; left blank, it is a line to sign by hand.
    """
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
        sheets.append(
            LedgerSheet(
                schedule_id=schedule.id,
                heading=phrase("report", "sheet_heading", lang, title=schedule.title),
                filled=_filled(lang, schedule.issued_by, filled_by, local_now.date()),
                footnote=phrase("report", "footnote", lang, as_of=local_now),
                rows=tuple(rows),
                states=tuple(states),
            )
        )
    if len(records) > 1:
        total_label = phrase("report", "total", lang)
        task_total = sum(len(s.rows) for s in sheets)
        summary.append(
            (total_label, None, None, None, task_total, *(totals.get(s, 0) for s in STATES))
        )
    tz = records[0].time.tz if records else None
    as_of = now.astimezone(tz) if tz else now
    # one issuing unit for every list: it is the summary's 填报单位 too
    units = {r.schedule.issued_by for r in records}
    unit = units.pop() if len(units) == 1 else None
    return Ledger(
        columns=COLUMNS,
        printed=len(PRINTED_COLUMNS),
        headers=tuple(phrase("report", "column", lang, key=key) for key in COLUMNS),
        schedule_header=phrase("report", "column", lang, key="schedule"),
        sheets=tuple(sheets),
        summary_name=phrase("report", "summary_sheet", lang),
        summary_heading=phrase("report", "summary_heading", lang),
        summary_filled=_filled(lang, unit, filled_by, as_of.date()),
        summary_footnote=phrase("report", "footnote", lang, as_of=as_of),
        summary_headers=tuple(
            phrase("report", "summary_column", lang, key=key) for key in SUMMARY_COLUMNS
        ),
        summary_rows=tuple(summary),
    )
