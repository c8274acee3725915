"""`dutybot demo`: a real schedule run through months on a simulated clock, in seconds.

Embedded defaults only: a temporary SQLite database, the console adapter (each message
printed as its recipient would see it) and scripted officials: most answer on time, one
answers late, one asks for an extension that the lead approves, one never answers.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import tempfile
import time as wallclock
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

import typer
from sqlmodel import Session, col, select

from bot import replies
from bot.adapters.console import ConsoleAdapter
from bot.clock import SimulatedClock
from bot.engine import effective_due
from bot.identities import bind_everyone
from bot.materialise import schedule_time
from bot.occurrences import ScheduleTime
from bot.roster import Roster
from bot.schedule.importer import import_schedule
from bot.schedule.validate import load_schedule
from bot.simulation import Timeline, run
from bot.store.db import open_store, session_scope
from bot.store.models import OPEN, Notification, Occurrence, Schedule, Task
from bot.texts import phrase, render
from bot.worker import Worker

SEED = Path(__file__).resolve().parent.parent / "schedules" / "fengdu-ndrc-2022.yaml"
LATE, EXTENDED, NEVER = "6", "25", "39"
ROUTINE = ("day", "workday", "week")


@dataclass
class Story:
    """What the scripted officials did, for the summary."""

    on_time: int = 0
    late: list[str] = field(default_factory=list)
    extended: list[str] = field(default_factory=list)
    never: list[str] = field(default_factory=list)
    routine: int = 0


class Script:
    """Scripted officials: each morning, decide when today's and upcoming items get answered."""

    def __init__(self, engine, st: ScheduleTime, schedule_id: str, timeline: Timeline) -> None:  # type: ignore[no-untyped-def]
        self.engine, self.st, self.schedule_id, self.timeline = engine, st, schedule_id, timeline
        self.planned: set[int] = set()
        self.story = Story()

    def at(self, day: date, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(day, time(hour, minute), self.st.tz)

    def morning(self, day: date) -> None:
        with Session(self.engine) as session:
            rows = session.exec(
                select(Occurrence, Task)
                .join(Task, col(Task.id) == Occurrence.task_id)
                .where(Occurrence.schedule_id == self.schedule_id, Occurrence.status == OPEN)
                .where(col(Occurrence.due_date) <= day + timedelta(days=10))
            ).all()
            roster = Roster.load(session, self.schedule_id)
            for occ, task in rows:
                if occ.id in self.planned or task.id is None or occ.id is None:
                    continue
                people = roster.assignees(task.id)
                if not people:
                    continue
                self.planned.add(occ.id)
                self.plan(occ, task, people[0], roster.lead(task.id), day)

    def plan(self, occ: Occurrence, task: Task, who: int, leads: list[int], today: date) -> None:
        cal, due = self.st.calendar, max(effective_due(occ), today)
        occ_id = occ.id or 0
        if task.every in ROUTINE:  # diligent routine: done before the first reminder of the period
            first = max(cal.workday_on_or_after(occ.period_start), today)
            self.timeline.at(self.at(first, 8, 0), self.done(occ_id, who, routine=True))
        elif task.ref == NEVER:
            self.story.never.append(task.ref)
        elif task.ref == LATE:
            self.timeline.at(
                self.at(cal.shift_workdays(due, 4), 11), self.done(occ_id, who, late=task.ref)
            )
        elif task.ref == EXTENDED and leads:
            new_due = due + timedelta(days=29)
            asked = cal.shift_workdays(due, -3)
            self.timeline.at(self.at(asked, 10), self.ask(occ_id, who, new_due))
            self.timeline.at(
                self.at(cal.shift_workdays(asked, 1), 9), self.decide(occ_id, leads[0])
            )
            self.timeline.at(
                self.at(cal.shift_workdays(new_due, -1), 15),
                self.done(occ_id, who, extended=task.ref),
            )
        else:
            if occ.times_required > 1:
                for k in range(occ.times_required - 1):
                    self.timeline.at(
                        self.at(cal.shift_workdays(due, -3 + k), 16), self.done(occ_id, who)
                    )
            self.timeline.at(
                self.at(cal.workday_on_or_before(due), 10), self.done(occ_id, who, on_time=True)
            )

    def done(
        self,
        occ_id: int,
        who: int,
        *,
        routine: bool = False,
        on_time: bool = False,
        late: str | None = None,
        extended: str | None = None,
    ):  # type: ignore[no-untyped-def]
        def event(now: datetime) -> None:
            with session_scope(self.engine) as session:
                occ = session.get(Occurrence, occ_id)
                if occ is None or occ.status != OPEN:
                    return
                evidence = (
                    []
                    if routine
                    else [replies.EvidenceIn("document", file_name=phrase("demo", "scripted_file"))]
                )
                note = None if routine else phrase("demo", "scripted_note")
                replies.complete(
                    session,
                    occurrence_id=occ_id,
                    person_id=who,
                    now=now,
                    note=note,
                    evidence=evidence,
                )
            self.story.routine += routine
            self.story.on_time += on_time
            if late:
                self.story.late.append(late)
            if extended:
                self.story.extended.append(extended)

        return event

    def ask(self, occ_id: int, who: int, new_due: date):  # type: ignore[no-untyped-def]
        def event(now: datetime) -> None:
            with session_scope(self.engine) as session:
                reason = phrase("demo", "scripted_reason")
                replies.request_extension(
                    session,
                    occurrence_id=occ_id,
                    person_id=who,
                    now=now,
                    new_date=new_due,
                    reason=reason,
                )

        return event

    def decide(self, occ_id: int, lead: int):  # type: ignore[no-untyped-def]
        def event(now: datetime) -> None:
            with session_scope(self.engine) as session:
                from bot.store.models import Reply

                reply = session.exec(
                    select(Reply).where(Reply.occurrence_id == occ_id, Reply.kind == "extension")
                ).first()
                if reply is not None and reply.id is not None:
                    replies.decide_extension(
                        session, reply_id=reply.id, person_id=lead, now=now, approve=True
                    )

        return event


def _chat(platform: str, clock: SimulatedClock, out: TextIO, tz: ZoneInfo, lang: str, brief: bool):  # type: ignore[no-untyped-def]
    """The demo's chat: the console, or a platform's preview (``bot.adapters.<name>.preview``)
    printing each message as that platform shows it."""
    if platform == "console":
        return ConsoleAdapter(clock, out=out, tz=tz, lang=lang, brief=brief)
    module = importlib.import_module(f"bot.adapters.{platform}.preview")
    return module.preview(clock=clock, out=out, tz=tz, lang=lang, brief=brief)


def run_demo(
    lang: str,
    *,
    until: date | None = None,
    full: bool = False,
    out: TextIO | None = None,
    platform: str = "console",
    keep: Path | None = None,
) -> None:
    """``keep``: leave the simulated run's SQLite database there (replaced if it exists), so
    the web console (``dutybot web``) can be opened on the demo data afterwards."""
    out = out or sys.stdout
    loaded = load_schedule(SEED, lang=lang)
    if not loaded.ok or loaded.spec is None:
        for problem in loaded.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(1)
    spec = loaded.spec
    first_day = spec.issued_on or date(2022, 5, 23)
    end_day = until or first_day + timedelta(days=100)
    started = wallclock.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        if keep is not None:
            for stale in (keep, Path(f"{keep}-wal"), Path(f"{keep}-shm")):
                stale.unlink(missing_ok=True)
        db = open_store(f"sqlite:///{keep or Path(folder) / 'demo.db'}")
        tz = ZoneInfo(spec.timezone)
        clock = SimulatedClock(datetime.combine(first_day, time(8, 0), tz))
        out.write(
            phrase("demo", "importing", lang, file=SEED.name, now=f"{first_day} 08:00") + "\n"
        )
        with session_scope(db) as session:
            diff = import_schedule(session, spec, now=clock.now(), horizon_days=62, actor="demo")
            schedule = session.get(Schedule, spec.schedule)
            assert schedule is not None
            st = schedule_time(schedule)
            bind_everyone(session, platform=platform, now=clock.now())
        out.write(render("import_diff", lang, diff=diff) + "\n\n")
        console = _chat(platform, clock, out, st.tz, lang, not full)
        worker = Worker(db, console, clock, lang=lang)
        timeline = Timeline()
        script = Script(db, st, spec.schedule, timeline)
        week = {"n": 0}

        def on_day(day: date) -> None:
            script.morning(day)
            if day.weekday() == 0 and day != first_day:
                week["n"] += 1
                typer.echo(
                    phrase(
                        "demo",
                        "progress",
                        lang,
                        week=week["n"],
                        day=day.isoformat(),
                        sent=console.count,
                    ),
                    err=True,
                )

        asyncio.run(
            run(
                worker,
                clock,
                st,
                until=datetime.combine(end_day, time(18, 0), st.tz),
                timeline=timeline,
                on_day=on_day,
            )
        )
        with Session(db) as session:
            sent = session.exec(select(Notification).where(Notification.state == "sent")).all()
            kinds = Counter((n.kind, n.level or "") for n in sent)
        db.dispose()
    out.write(
        render(
            "demo_summary",
            lang,
            first=first_day.isoformat(),
            last=end_day.isoformat(),
            total=len(sent),
            kinds=sorted(kinds.items()),
            story=script.story,
            seconds=round(wallclock.perf_counter() - started, 1),
        )
        + "\n"
    )
    admin = spec.admins[0] if spec.admins else "NAME"
    kept = str(keep) if keep is not None else None
    out.write(phrase("demo", "open_console", lang, kept=kept, admin=admin) + "\n")
