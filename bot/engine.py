"""The engine's tick: decide what is due and record it in the outbox, durably, once.

Everything here runs in short transactions against the store.  The decisions are made
by the pure planners (:mod:`bot.escalation`, :mod:`bot.digest`); this module loads
their inputs and writes their outputs.  Only open occurrences whose ``next_action_at``
has come are read, through a partial index, so a tick costs what is due, not what exists.
On PostgreSQL the rows are locked with ``FOR UPDATE SKIP LOCKED``, so two workers
never plan the same occurrence; the outbox's unique key is the backstop.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import logging
import threading
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine as DbEngine
from sqlalchemy import Text, cast, func
from sqlmodel import Session, col, select

from bot import digest as digests
from bot import metrics
from bot.bundling import relevance
from bot.escalation import (
    BLUE,
    ESCALATION,
    RED,
    YELLOW,
    Decision,
    Ladder,
    Progress,
    clip,
    clipped_from,
    decide,
    rebase,
    unclipped_ladder,
)
from bot.materialise import materialise, schedule_time
from bot.occurrences import ScheduleTime
from bot.outbox import GatherStats, enqueue, enqueue_bundled, gather_all, notification_row
from bot.roster import Roster
from bot.store.db import bulk_update, session_scope
from bot.store.models import DONE, OPEN, AuditEvent, Occurrence, Schedule, Task

log = logging.getLogger("dutybot.engine")

DIGEST = "digest"
# tasks by (database, schedule): as of the import stamped on the schedule (see _Context.known_of)
_TASKS: dict[tuple[str, str], tuple[tuple[datetime | None, str], _Known]] = {}
_TASKS_LOCK = threading.Lock()
ROUTINE = ("day", "workday")


_PAUSE = {"count": 0, "resume": False}  # passes under way, and whether to turn it back on
_PAUSE_LOCK = threading.Lock()


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for one planning pass.  A catch-up keeps tens of
    thousands of planned rows alive until its batch is written; each survivor pushed the
    collector on to full collections over the whole heap: a quarter of the first pass after
    an outage (bench/restart.py's plan: 1.27-1.33 s with the collector off, 1.73-1.75 s on).
    Memory is still freed by reference counting; only reference cycles wait for the pass to
    end.  The collector is the process's: overlapping passes (other threads) are counted."""
    with _PAUSE_LOCK:
        if _PAUSE["count"] == 0:
            _PAUSE["resume"] = gc.isenabled()
            gc.disable()
        _PAUSE["count"] += 1
    try:
        yield
    finally:
        with _PAUSE_LOCK:
            _PAUSE["count"] -= 1
            if _PAUSE["count"] == 0 and _PAUSE["resume"]:
                gc.enable()


@dataclass
class _Context:
    """Per-pass caches (shared by the pass's batches, each in its own transaction): a
    schedule's time rules and tasks are read once per pass, its roster once per import
    (:meth:`Roster.cached`), a batch's tasks and open periods in one query."""

    session: Session = field(init=False)  # the batch's, given by each batch
    schedules: dict[str, Schedule] = field(default_factory=dict)
    times: dict[str, ScheduleTime] = field(default_factory=dict)
    rosters: dict[str, Roster] = field(default_factory=dict)
    tasks: dict[int, PlanTask] = field(default_factory=dict)
    known: dict[str, _Known] = field(default_factory=dict)  # each schedule's, this pass
    overdue: dict[int, int] = field(default_factory=dict)
    ladders: dict[tuple[Any, ...], Ladder] = field(default_factory=dict)
    # per-instant answers that thousands of rows share: one computation each per pass
    overdue_days: dict[tuple[str, date, date], int] = field(default_factory=dict)
    slots: dict[tuple[str, datetime], datetime] = field(default_factory=dict)
    today_of: dict[str, date] = field(default_factory=dict)  # each schedule's local date
    decisions: dict[tuple[int, Progress, datetime], Decision] = field(default_factory=dict)

    def ladder(
        self,
        occ: Occurrence,
        task: Task | PlanTask,
        st: ScheduleTime,
        escalation: list[dict[str, Any]] | None,
    ) -> Ladder:
        """Occurrences due the same day under the same rules share their ladder, computed
        once: the rules, not the task, are the key (most tasks inherit the list's policy),
        and the period only clips the reminders (:func:`bot.escalation.clip`)."""
        assert task.id is not None
        known_rules = self.known_of(occ.schedule_id).rules
        rules = known_rules.get(task.id)
        if rules is None:
            policy = task.policy or {}
            rules = known_rules[task.id] = (
                repr(policy.get("remind", [])),
                repr(policy.get("escalate", [])),
            )
        escalate = (task.policy or {}).get("escalate", [])
        snapshot = rules[1] if escalation is None or escalation == escalate else repr(escalation)
        key = (occ.schedule_id, rules[0], snapshot, effective_due(occ), occ.kind)
        whole = self.ladders.get(key)
        if whole is None:
            whole = self.ladders[key] = _ladder(occ, task, st, escalation)
        clipped_key = (*key, clipped_from(whole, occ.period_start))
        found = self.ladders.get(clipped_key)
        if found is None:
            found = self.ladders[clipped_key] = clip(whole, occ.period_start)
        return found

    def decide(self, lad: Ladder, progress: Progress, st: ScheduleTime, now: datetime) -> Decision:
        """Rows sharing a ladder (kept alive in ``ladders``) and a progress share a decision:
        a catch-up after an outage is thousands of rows due the same day, none yet told."""
        key = (id(lad), progress, now)
        found = self.decisions.get(key)
        if found is None:
            found = self.decisions[key] = decide(lad, progress, st, now)
        return found

    def task_part(self, schedule_id: str, task: Task | PlanTask) -> dict[str, Any]:
        """What every message about the task shows (its names, units ...): computed once per
        import of its list, shared read-only by all its rows and ticks."""
        assert task.id is not None
        parts = self.known_of(schedule_id).parts
        found = parts.get(task.id)
        if found is None:
            found = parts[task.id] = task_fields(
                self.schedule(schedule_id), task, self.roster(schedule_id)
            )
        return found

    def days_overdue(self, schedule_id: str, due: date, today: date) -> int:
        key = (schedule_id, due, today)
        found = self.overdue_days.get(key)
        if found is None:
            found = self.overdue_days[key] = overdue_days(self.time(schedule_id), due, today)
        return found

    def slot(self, schedule_id: str, instant: datetime) -> datetime:
        """When a message planned for ``instant`` may go out (a catch-up's are all ``now``)."""
        key = (schedule_id, instant)
        found = self.slots.get(key)
        if found is None:
            st = self.time(schedule_id)
            # in UTC, as ``now`` is: instants of one zone compare without asking it offsets
            slot = st.hours.next_slot(instant, st.tz, st.calendar).astimezone(UTC)
            found = self.slots[key] = slot
        return found

    def schedule(self, schedule_id: str) -> Schedule:
        if schedule_id not in self.schedules:
            found = self.session.get(Schedule, schedule_id)
            assert found is not None
            self.schedules[schedule_id] = found
        return self.schedules[schedule_id]

    def time(self, schedule_id: str) -> ScheduleTime:
        if schedule_id not in self.times:
            self.times[schedule_id] = schedule_time(self.schedule(schedule_id))
        return self.times[schedule_id]

    def roster(self, schedule_id: str) -> Roster:
        if schedule_id not in self.rosters:
            self.rosters[schedule_id] = Roster.cached(self.session, self.schedule(schedule_id))
        return self.rosters[schedule_id]

    def load(self, rows: list[Occurrence], today_of: dict[str, date]) -> None:
        """The batch's tasks (kept across ticks until the next import) in one query, and the
        open overdue periods of its recurring tasks in one GROUP BY (not one query per row)."""
        by_schedule: dict[str, set[int]] = {}
        for occ in rows:
            if occ.task_id not in self.tasks:
                by_schedule.setdefault(occ.schedule_id, set()).add(occ.task_id)
        for schedule_id, ids in by_schedule.items():
            known = self.known_of(schedule_id).tasks
            self.tasks.update({tid: known[tid] for tid in ids if tid in known})
            wanted = ids - set(known)
            if not wanted:
                continue
            for task in _plan_tasks(self.session, wanted):
                known[task.id] = self.tasks[task.id] = task
        recurring = {
            occ.task_id
            for occ in rows
            if occ.task_id not in self.overdue and self.tasks[occ.task_id].kind != "deadline"
        }
        counting: dict[str, set[int]] = {}
        for occ in rows:
            if occ.task_id in recurring:
                counting.setdefault(occ.schedule_id, set()).add(occ.task_id)
        for schedule_id, task_ids in counting.items():
            # overdue: the effective due day (its deadline instant ``due_at`` falls on it) is
            # before today, i.e. the deadline is before today's local midnight -- a range of
            # the (task_id, due_at) open index, not a scan of the task's open rows
            midnight = _local_midnight(today_of[schedule_id], self.time(schedule_id))
            counts = self.session.exec(
                select(Occurrence.task_id, func.count())
                .where(col(Occurrence.task_id).in_(task_ids), Occurrence.status == OPEN)
                .where(col(Occurrence.due_at) < midnight)
                .group_by(col(Occurrence.task_id))
            ).all()
            self.overdue.update({task_id: 0 for task_id in task_ids})
            self.overdue.update({task_id: int(n) for task_id, n in counts})

    def known_of(self, schedule_id: str) -> _Known:
        """What earlier ticks of this process derived from a schedule's tasks, as of its last
        import (tasks change only through an import, which stamps the schedule, as rosters
        do); looked up once per pass."""
        found = self.known.get(schedule_id)
        if found is None:
            schedule = self.schedule(schedule_id)
            bind = self.session.get_bind()
            engine = getattr(bind, "engine", bind)
            key = (str(engine.url), schedule_id)
            stamp = (schedule.imported_at, schedule.content_hash)
            with _TASKS_LOCK:
                cached = _TASKS.get(key)
                if cached is None or cached[0] != stamp:
                    cached = _TASKS[key] = (stamp, _Known())
            found = self.known[schedule_id] = cached[1]
        return found

    def open_periods(self, task_id: int) -> int:
        """How many periods of a recurring task are overdue and still open."""
        return self.overdue.get(task_id, 0)

    def task(self, task_id: int) -> PlanTask:
        if task_id not in self.tasks:
            (found,) = _plan_tasks(self.session, {task_id})
            self.tasks[task_id] = found
        return self.tasks[task_id]


@dataclass
class _Known:
    """What planning derives from a schedule's tasks, kept across ticks until its next
    import: the tasks, their rules as ladder keys, what their messages show (one task_fields
    per task and import, not per pass: a tick with 1,000 due rebuilt 400 of them)."""

    tasks: dict[int, PlanTask] = field(default_factory=dict)
    rules: dict[int, tuple[str, str]] = field(default_factory=dict)
    parts: dict[int, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanTask:
    """What planning reads of a task, as plain values shared read-only across ticks (10k
    ORM tasks, each decoding its spec and policy, were most of a cold catch-up's loading)."""

    id: int
    ref: str
    title: str
    kind: str
    policy: dict[str, Any] | None


def _plan_tasks(session: Session, ids: Collection[int]) -> list[PlanTask]:
    """Tasks by id; a policy text shared by many tasks (the list's own) is decoded once."""
    policy_text = cast(Task.policy, Text)
    rows = session.execute(
        select(Task.id, Task.ref, Task.title, Task.kind, policy_text).where(
            col(Task.id).in_(list(ids))
        )
    ).all()
    policies: dict[str | None, dict[str, Any] | None] = {None: None}
    found = []
    for task_id, ref, title, kind, text in rows:
        if text not in policies:
            policies[text] = json.loads(text)
        found.append(PlanTask(task_id, ref, title, kind, policies[text]))
    return found


# what planning reads of an occurrence (its ladder state, and what its messages show)
_PLANNED = (
    Occurrence.id,
    Occurrence.task_id,
    Occurrence.schedule_id,
    Occurrence.kind,
    Occurrence.period_start,
    Occurrence.due_date,
    Occurrence.extended_to,
    Occurrence.times_required,
    Occurrence.times_done,
    Occurrence.planned_due,
    Occurrence.escalation,
    Occurrence.reminder_step,
    Occurrence.escalation_step,
    Occurrence.escalation_repeats,
    Occurrence.next_action_at,
    Occurrence.planning_error,
)
_PROGRESS = (
    "planned_due",
    "escalation",
    "reminder_step",
    "escalation_step",
    "escalation_repeats",
    "next_action_at",
    "planning_error",
)


def _progress_of(occ: Occurrence) -> dict[str, Any]:
    values = {name: getattr(occ, name) for name in _PROGRESS}
    values["id"] = occ.id
    return values


def _write_progress(session: Session, rows: list[dict[str, Any]]) -> None:
    """The batch's ladder states in one statement (:func:`bulk_update`)."""
    bulk_update(session, Occurrence, rows)


@dataclass
class _Batch:
    """A batch of due occurrences as decided: its messages, not written yet."""

    size: int  # occurrences read (fewer than asked for: the last batch)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    progress: list[dict[str, Any]] = field(default_factory=list)  # written when decided


def _committed(write: Callable[[Session, _Batch], int], session: Session, batch: _Batch) -> int:
    """``write`` the batch and commit it -- or roll it all back -- then close its session
    (what :func:`session_scope` does, for a session opened by another thread)."""
    try:
        written = write(session, batch)
        session.commit()
        return written
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def effective_due(occ: Occurrence) -> date:
    return occ.extended_to or occ.due_date


def level_of(occ: Occurrence) -> str:
    """三色督办 colour an occurrence has reached."""
    if occ.escalation_step < 0:
        return BLUE
    steps = occ.escalation or []
    if 0 <= occ.escalation_step < len(steps) and steps[occ.escalation_step].get("level"):
        return str(steps[occ.escalation_step]["level"])
    return RED if occ.escalation_step >= len(steps) - 1 else YELLOW


def occurrence_ladder(occ: Occurrence, task: Task | PlanTask, st: ScheduleTime) -> Ladder:
    return clip(_ladder(occ, task, st, occ.escalation), occ.period_start)


def _ladder(
    occ: Occurrence,
    task: Task | PlanTask,
    st: ScheduleTime,
    escalation: list[dict[str, Any]] | None,
) -> Ladder:
    """The occurrence's due day's whole ladder (not yet clipped to its period)."""
    policy = task.policy or {}
    return unclipped_ladder(
        due_date=effective_due(occ),
        occurrence_kind=occ.kind,
        remind=list(policy.get("remind", [])),
        escalate=escalation if escalation is not None else list(policy.get("escalate", [])),
        st=st,
    )


def occurrence_payload(
    schedule: Schedule, occ: Occurrence, task: Task, roster: Roster, st: ScheduleTime, today: date
) -> dict[str, Any]:
    """What every message about an occurrence may show: the one shape for all templates."""
    due = effective_due(occ)
    return _payload(task_fields(schedule, task, roster), occ, due, overdue_days(st, due, today))


def task_fields(schedule: Schedule, task: Task | PlanTask, roster: Roster) -> dict[str, Any]:
    """The part of an occurrence's payload that is its task's (the same for all its rows)."""
    assert task.id is not None
    return {
        "schedule": schedule.title,
        "ref": task.ref,
        "title": task.title,
        "assignees": roster.names(roster.assignees(task.id)),
        "lead": roster.names(roster.lead(task.id)),
        "units": roster.unit_list(task.id),
        "evidence": (task.policy or {}).get("evidence", "optional"),
    }


def overdue_days(st: ScheduleTime, due: date, today: date) -> int:
    return st.calendar.workdays_after(due, today) if due < today else 0


def _payload(task: dict[str, Any], occ: Occurrence, due: date, overdue: int) -> dict[str, Any]:
    return {
        "schedule": task["schedule"],
        "ref": task["ref"],
        "title": task["title"],
        "occurrence_kind": occ.kind,
        "due_date": due.isoformat(),
        "original_due": occ.due_date.isoformat() if occ.extended_to else None,
        "period_start": occ.period_start.isoformat(),
        "times_done": occ.times_done,
        "times_required": occ.times_required,
        "overdue_days": overdue,
        "assignees": task["assignees"],
        "lead": task["lead"],
        "units": task["units"],
        "evidence": task["evidence"],
    }


class Engine:
    """Planning side of the product; the dispatcher (bot.outbox) does the sending."""

    def __init__(self, db: DbEngine, *, horizon_days: int = 62, batch: int = 500) -> None:
        self.db = db
        self.horizon_days = horizon_days
        self.batch = batch  # a pass's first batch (a backlog's batches grow: _limits)

    # -- occurrences ---------------------------------------------------------------
    def materialise_all(self, now: datetime) -> int:
        added = 0
        with session_scope(self.db) as session:
            for schedule in session.exec(select(Schedule)).all():
                added += materialise(
                    session, schedule, now=now, horizon_days=self.horizon_days
                ).added
        return added

    def behind(self, now: datetime) -> bool:
        """Whether some schedule's occurrences stop before tomorrow, so that something due
        now may not exist yet: only after an outage longer than the horizon."""
        with session_scope(self.db) as session:
            for schedule in session.exec(select(Schedule)).all():
                tomorrow = schedule_time(schedule).local_date(now) + timedelta(days=1)
                if schedule.materialised_until is None or schedule.materialised_until < tomorrow:
                    return True
        return False

    # -- reminders and escalations -------------------------------------------------------
    def plan(
        self,
        now: datetime,
        *,
        ahead: timedelta = timedelta(0),
        platforms: Collection[str] | None = None,
        stats: GatherStats | None = None,
    ) -> int:
        """Plan every occurrence whose next action comes by ``now + ahead``; returns outbox rows
        written.  Messages planned ahead carry their own send-at instant.  One occurrence that
        cannot be planned (a value no calendar can place) is recorded on its row and reported
        to the schedule's admins; the others carry on.

        Given the sender's ``platforms``, what is due is written already in its bundles, with
        its deliveries (:func:`bot.outbox.enqueue_bundled`, counted in ``stats``); otherwise
        it is written pending, for :func:`bot.outbox.gather`."""
        stats = stats if stats is not None else GatherStats()
        now = now.astimezone(UTC)  # the instants planned are compared with it thousands of times
        ctx = _Context()  # the pass's caches; each batch gives it its session
        write = functools.partial(
            self._write_batch, now=now, ahead=ahead, platforms=platforms, stats=stats
        )
        if isinstance(self.db, DbEngine) and self.db.dialect.name == "postgresql":
            return self._plan_overlapped(ctx, now, now + ahead, write)
        written = 0
        for limit in self._limits():
            with session_scope(self.db) as session, session.no_autoflush:
                batch = self._decide_batch(session, ctx, now, now + ahead, limit)
                written += write(session, batch)
            if batch.size < limit:
                break
        return written

    def _limits(self) -> Iterator[int]:
        """A pass's batch sizes: the first, then twice as many each time a batch was full, up
        to four times the first.  A catch-up after an outage paid what every batch costs
        whatever its size (the same people's bundles read and locked again, their deliveries'
        expiry extended again) 20 times for 10,000 occurrences in batches of 500; a tick
        with a few due rows still reads one small batch."""
        limit = self.batch
        while True:
            yield limit
            limit = min(2 * limit, 4 * self.batch)

    def _plan_overlapped(
        self,
        ctx: _Context,
        now: datetime,
        horizon: datetime,
        write: Callable[[Session, _Batch], int],
    ) -> int:
        """:meth:`plan`'s batches on PostgreSQL: each is still one transaction (its ladder
        states and its messages, or neither), but the next batch is read, decided and its
        ladder states written on a connection of its own while a second thread writes this
        batch's messages and commits.  The server's share of a batch was half of a tick and
        the client waited for it; now it works on the next batch meanwhile.  Rows being
        written are locked (``FOR UPDATE``), so the next batch skips them; messages are
        written one batch after the other, so each sees the bundles the one before made.
        SQLite allows one writer and its snapshot would be stale: it runs them in turn."""
        written = 0
        writing: Future[int] | None = None
        session: Session | None = None
        writer: ThreadPoolExecutor | None = None  # made for a pass of more than one batch
        try:
            for limit in self._limits():
                session = Session(self.db, expire_on_commit=False, autoflush=False)
                batch = self._decide_batch(session, ctx, now, horizon, limit)
                if writing is not None:
                    written += writing.result()  # the batch before: committed
                    writing = None
                reading, session = session, None  # from here on, the write closes it
                if batch.size < limit:  # the last batch: nothing to read meanwhile
                    return written + _committed(write, reading, batch)
                if writer is None:
                    writer = ThreadPoolExecutor(1, thread_name_prefix="dutybot-plan-write")
                writing = writer.submit(_committed, write, reading, batch)
            raise AssertionError("_limits never ends")
        finally:
            if session is not None:  # read but never handed over: release its rows
                session.rollback()
                session.close()
            if writing is not None:  # failed meanwhile: the write under way ends first
                with contextlib.suppress(Exception):
                    writing.result()
            if writer is not None:
                writer.shutdown()

    def _decide_batch(
        self, session: Session, ctx: _Context, now: datetime, horizon: datetime, limit: int
    ) -> _Batch:
        """Lock the next batch of due occurrences, decide each one and write their new ladder
        states (one statement); their messages are written by :meth:`_write_batch`, in the
        same transaction."""
        ctx.session = session
        # plain rows of the columns planning reads, not ORM objects: read-only here
        # (the new ladder states are written in one statement), and building objects
        # cost more than planning
        query = (
            select(*_PLANNED)
            .where(Occurrence.status == OPEN, col(Occurrence.next_action_at) <= horizon)
            .order_by(col(Occurrence.next_action_at), col(Occurrence.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows: list[Any] = list(session.execute(query).all())
        today_of = ctx.today_of = {
            sid: ctx.time(sid).local_date(now) for sid in {o.schedule_id for o in rows}
        }
        ctx.load(list(rows), today_of)
        batch = _Batch(len(rows))
        for occ in rows:
            try:
                planned, values = self._plan_one(ctx, occ, now, horizon)
            except Exception as exc:  # isolate: one bad row must not stop the rest
                planned, values = self._planning_failed(ctx, occ, exc, now)
            batch.outbox += planned
            batch.progress.append(values)
        _write_progress(session, batch.progress)
        return batch

    def _write_batch(
        self,
        session: Session,
        batch: _Batch,
        *,
        now: datetime,
        ahead: timedelta,
        platforms: Collection[str] | None,
        stats: GatherStats,
    ) -> int:
        """Write a batch's messages, in the batch's transaction."""
        if platforms is None:
            return enqueue(session, batch.outbox)
        return enqueue_bundled(
            session, batch.outbox, now, platforms=platforms, ahead=ahead, stats=stats
        )

    def _planning_failed(
        self, ctx: _Context, occ: Occurrence, exc: Exception, now: datetime
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        reason = f"{type(exc).__name__}: {exc}"[:500]
        log.error("occurrence %s of task %s cannot be planned: %s", occ.id, occ.task_id, reason)
        metrics.PLANNING_ERRORS.inc()
        values = _progress_of(occ)  # unchanged, but set aside until the list is fixed
        values.update(next_action_at=None, planning_error=reason)
        ctx.session.add(
            AuditEvent(
                at=now,
                actor="system",
                action="planning_failed",
                schedule_id=occ.schedule_id,
                task_id=occ.task_id,
                occurrence_id=occ.id,
                channel="system",
                detail={"reason": reason},
            )
        )
        roster = ctx.roster(occ.schedule_id)
        task = ctx.tasks.get(occ.task_id)
        return [
            notification_row(
                key=f"alert:planning:{occ.id}:{admin}",
                kind="admin_alert",
                person_id=admin,
                not_before=now,
                now=now,
                schedule_id=occ.schedule_id,
                occurrence_id=occ.id,
                payload={
                    "person": "",
                    "reason": reason,
                    "problem": "planning",
                    "ref": task.ref if task else "",
                    "title": task.title if task else "",
                },
            )
            for admin in roster.admins()
        ], values

    def _plan_one(
        self, ctx: _Context, occ: Occurrence, now: datetime, horizon: datetime
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Decide one occurrence: its messages, and its new ladder state (written with the
        batch's in one statement; nothing of it is written unless all of it succeeded)."""
        task = ctx.task(occ.task_id)
        st = ctx.time(occ.schedule_id)
        due = effective_due(occ)
        escalation = occ.escalation
        if occ.planned_due != due:
            if occ.planned_due is not None:
                escalation = None  # a new due day restarts the ladder from the live policy
            lad = ctx.ladder(occ, task, st, escalation)
            progress = rebase(lad, st, now) if occ.planned_due is not None else Progress()
        else:
            lad = ctx.ladder(occ, task, st, escalation)
            progress = Progress(occ.reminder_step, occ.escalation_step, occ.escalation_repeats)
        decision = ctx.decide(lad, progress, st, horizon)
        rows: list[dict[str, Any]] = []
        if decision.send:
            today = ctx.today_of[occ.schedule_id]
            payload = _payload(
                ctx.task_part(occ.schedule_id, task),
                occ,
                due,
                ctx.days_overdue(occ.schedule_id, due, today),
            )
            roster = ctx.roster(occ.schedule_id)
            assert task.id is not None and occ.id is not None
            collapse = task.kind != "deadline"
            if collapse:
                payload["open_periods"] = ctx.open_periods(task.id)
            for message in decision.send:
                if message.kind == ESCALATION and escalation is None:
                    # the task's own (shared, read-only): encoded once for all its rows
                    escalation = (task.policy or {}).get("escalate", [])
                not_before = ctx.slot(occ.schedule_id, max(message.at, now))
                step = message.step * 1000 + message.repeat
                # one payload per message, shared by its recipients' rows (encoded once)
                shared = {
                    **payload,
                    "level": message.level,
                    "offset": message.offset,
                    "repeat": message.repeat,
                    "targets": list(message.targets),
                    "catch_up": message.catch_up,
                }
                # a duty missed period after period: one message a day, not one per period
                if collapse and message.kind == ESCALATION:
                    prefix = f"task:{task.id}:{message.kind}:{message.step}:"
                    suffix = f":{today.isoformat()}"
                else:
                    prefix, suffix = f"occ:{occ.id}:{due.isoformat()}:{message.kind}:{step}:", ""
                expires_at = max(not_before, now) + relevance(message.kind)
                for person_id in roster.resolve(task.id, message.targets):
                    rows.append(
                        notification_row(
                            key=f"{prefix}{person_id}{suffix}",
                            kind=message.kind,
                            person_id=person_id,
                            not_before=not_before,
                            now=now,
                            schedule_id=occ.schedule_id,
                            occurrence_id=occ.id,
                            level=message.level,
                            step=step,
                            payload=shared,
                            expires_at=expires_at,
                        )
                    )
        values = {  # the order of _PROGRESS, and the id (bulk_update: same columns every row)
            "planned_due": due,
            "escalation": escalation,
            "reminder_step": decision.progress.reminder_step,
            "escalation_step": decision.progress.escalation_step,
            "escalation_repeats": decision.progress.escalation_repeats,
            "next_action_at": decision.next_action_at,
            "planning_error": None,
            "id": occ.id,
        }
        return rows, values

    def plan_pass(
        self,
        now: datetime,
        *,
        platforms: Collection[str],
        ahead: timedelta = timedelta(0),
        digests: bool = True,
    ) -> tuple[int, int, GatherStats]:
        """One planning pass as the runtime runs it (the forecast rehearses the same): plan
        what is due by ``now + ahead`` into bundles, plan digests (unless told not to: a
        catch-up after an outage sends its messages first), gather what else is pending."""
        gathered = GatherStats()
        with collector_paused():
            planned = self.plan(now, ahead=ahead, platforms=platforms, stats=gathered)
            digested = self.plan_digests(now) if digests else 0
            gathered.add(
                gather_all(lambda: session_scope(self.db), now, platforms=platforms, ahead=ahead)
            )
        return planned, digested, gathered

    # -- digests ---------------------------------------------------------------------------
    def plan_digests(self, now: datetime) -> int:
        written = 0
        with session_scope(self.db) as session:
            ctx = _Context()
            ctx.session = session
            for schedule in session.exec(select(Schedule).with_for_update(skip_locked=True)).all():
                written += self._digest_schedule(ctx, schedule, now)
        return written

    def _digest_schedule(self, ctx: _Context, schedule: Schedule, now: datetime) -> int:
        st = ctx.time(schedule.id)
        local = now.astimezone(st.tz)
        today = local.date()
        policy = (schedule.policy or {}).get("digest", {})
        at_hour, at_minute = (int(x) for x in str(policy.get("at", "08:30")).split(":"))
        if schedule.digest_planned_on == today or not st.calendar.is_workday(today):
            return 0
        if (local.hour, local.minute) < (at_hour, at_minute):
            return 0
        first_of_week = (
            st.calendar.workday_on_or_after(today - timedelta(days=today.weekday())) == today
        )
        if policy.get("on") == "weekly" and not first_of_week:
            return 0
        schedule.digest_planned_on = today
        ctx.session.add(schedule)
        roster = ctx.roster(schedule.id)
        scopes = _digest_scopes(
            ctx.session, roster, schedule.id, list(policy.get("to", ["lead", "chief"]))
        )
        if not scopes:
            return 0
        items = _digest_items(ctx, schedule.id, today)
        weekly_items = _weekly_items(ctx, schedule.id, today) if first_of_week else None
        since = st.calendar.shift_workdays(today, -1)
        rows = []
        for person_id, task_ids in scopes.items():
            mine = [i for i in items if task_ids is None or i.task_id in task_ids]
            week = [
                i for i in weekly_items or [] if task_ids is None or i.task_id in task_ids
            ] or None
            content = digests.build(mine, today=today, since=since, cal=st.calendar, weekly=week)
            if content.empty:
                continue
            rows.append(
                notification_row(
                    key=f"digest:{schedule.id}:{person_id}:{today.isoformat()}",
                    kind=DIGEST,
                    person_id=person_id,
                    not_before=st.hours.next_slot(now, st.tz, st.calendar),
                    now=now,
                    schedule_id=schedule.id,
                    payload={
                        "schedule": schedule.title,
                        "date": today.isoformat(),
                        "whole": task_ids is None,
                        **content.as_payload(),
                    },
                )
            )
        return enqueue(ctx.session, rows)


def _digest_scopes(
    session: Session, roster: Roster, schedule_id: str, targets: list[str]
) -> dict[int, set[int] | None]:
    """Who gets a digest and over which tasks (None: the whole schedule)."""
    scopes: dict[int, set[int] | None] = {}
    whole: list[int] = []
    for target in targets:
        if target in ("chief", "admins"):
            whole += roster.chief() if target == "chief" else roster.admins()
        elif target not in ("lead", "responsible"):
            whole += roster.resolve(0, [target])
    for pid in whole:
        scopes[pid] = None
    roles = [t for t in targets if t in ("lead", "responsible")]
    for task_id in roster.members:
        for role in roles:
            for pid in roster.lead(task_id) if role == "lead" else roster.responsible(task_id):
                if pid not in scopes or scopes[pid] is not None:
                    scopes.setdefault(pid, set()).add(task_id)  # type: ignore[union-attr]
    return scopes


def _item(ctx: _Context, occ: Occurrence, task: Task) -> digests.Item:
    return digest_item(occ, task, ctx.roster(occ.schedule_id), ctx.time(occ.schedule_id))


def digest_item(occ: Occurrence, task: Task, roster: Roster, st: ScheduleTime) -> digests.Item:
    """One occurrence as a digest line: the one shape for scheduled digests and /digest."""
    assert task.id is not None and occ.id is not None
    units = roster.unit_list(task.id)
    return digests.Item(
        occurrence_id=occ.id,
        task_id=task.id,
        ref=task.ref,
        title=task.title,
        unit=units[0] if units else "",
        due_date=effective_due(occ),
        status=occ.status,
        level=level_of(occ),
        times_done=occ.times_done,
        times_required=occ.times_required,
        completed_on=st.local_date(occ.completed_at) if occ.completed_at else None,
        routine=task.every in ROUTINE,
    )


@dataclass(frozen=True)
class _TaskLine:
    """What a digest line shows of its task (read as plain columns, not an ORM object)."""

    id: int
    ref: str
    title: str
    every: str | None


_DIGEST_TASK = (Task.id, Task.ref, Task.title, Task.every)


def _digest_rows(ctx: _Context, query: Any) -> list[digests.Item]:
    """Digest lines from plain rows: a list of 10k open items built 20k ORM objects."""
    occ_columns = list(Occurrence.__table__.c)  # type: ignore[attr-defined]
    rows = ctx.session.execute(query.with_only_columns(*occ_columns, *_DIGEST_TASK)).all()
    n = len(occ_columns)
    items = []
    for row in rows:
        task = _TaskLine(*row[n:])
        items.append(_item(ctx, row, task))  # type: ignore[arg-type]
    return items


def _digest_items(ctx: _Context, schedule_id: str, today: date) -> list[digests.Item]:
    st = ctx.time(schedule_id)
    soon = st.calendar.shift_workdays(today, digests.DUE_SOON_WORKDAYS)
    since = st.calendar.shift_workdays(today, -1) - timedelta(days=1)
    query = (
        select(Occurrence, Task)
        .join(Task, col(Task.id) == Occurrence.task_id)
        .where(Occurrence.schedule_id == schedule_id, col(Task.active).is_(True))
        .where(
            (
                (Occurrence.status == OPEN)
                & (func.coalesce(Occurrence.extended_to, Occurrence.due_date) <= soon)
            )
            | (
                (Occurrence.status == DONE)
                & (col(Occurrence.completed_at) >= _local_midnight(since, st))
            )
        )
    )
    return _digest_rows(ctx, query)


def _weekly_items(ctx: _Context, schedule_id: str, today: date) -> list[digests.Item]:
    """Occurrences due last week (Mon–Sun), done or not: the completion rate's base."""
    monday = today - timedelta(days=today.weekday() + 7)
    query = (
        select(Occurrence, Task)
        .join(Task, col(Task.id) == Occurrence.task_id)
        .where(Occurrence.schedule_id == schedule_id, Occurrence.status != "cancelled")
        .where(Occurrence.due_date >= monday, Occurrence.due_date <= monday + timedelta(days=6))
    )
    return _digest_rows(ctx, query)


def _local_midnight(day: date, st: ScheduleTime) -> datetime:
    return datetime.combine(day, datetime.min.time(), st.tz)
