"""What is coming up: open occurrences due soon and those already overdue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import Session, col, select

from bot.materialise import schedule_time
from bot.reports.records import require_schedule
from bot.roster import Roster
from bot.store.models import OPEN, Occurrence, Schedule, Task


@dataclass(frozen=True)
class AgendaRow:
    schedule_id: str
    ref: str
    title: str
    kind: str
    due_date: date
    overdue_days: int
    times: str
    assignees: list[str]
    lead: list[str]


def upcoming_rows(
    session: Session, *, now: datetime, days: int, schedule_id: str | None = None
) -> list[AgendaRow]:
    query = select(Schedule).order_by(Schedule.id)
    if schedule_id:
        require_schedule(session, schedule_id)  # "nothing due" must not hide a typo
        query = query.where(Schedule.id == schedule_id)
    rows: list[AgendaRow] = []
    for schedule in session.exec(query):
        st = schedule_time(schedule)
        today = st.local_date(now)
        roster = Roster.load(session, schedule.id)
        pairs = session.exec(
            select(Occurrence, Task)
            .join(Task, col(Task.id) == Occurrence.task_id)
            .where(
                Occurrence.schedule_id == schedule.id,
                Occurrence.status == OPEN,
                Occurrence.due_date <= today + timedelta(days=days),
            )
            .order_by(Occurrence.due_date, Task.position)
        )
        for occ, task in pairs:
            assert task.id is not None
            due = occ.extended_to or occ.due_date
            rows.append(
                AgendaRow(
                    schedule_id=schedule.id,
                    ref=task.ref,
                    title=task.title,
                    kind=occ.kind,
                    due_date=due,
                    overdue_days=st.calendar.workdays_after(due, today),
                    times=f"{occ.times_done}/{occ.times_required}",
                    assignees=roster.names(roster.assignees(task.id)),
                    lead=roster.names(roster.lead(task.id)),
                )
            )
    return rows
