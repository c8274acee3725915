"""The escalation ladder: exact instants, holidays and 调休, collapse after downtime, repeats."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.calendar import WorkCalendar, WorkingHours
from bot.escalation import (
    BLUE,
    ESCALATION,
    PROGRESS,
    RED,
    REMINDER,
    YELLOW,
    Progress,
    decide,
    ladder,
    rebase,
)
from bot.occurrences import ScheduleTime

TZ = ZoneInfo("Asia/Shanghai")
ST = ScheduleTime(WorkCalendar("cn"), WorkingHours.parse("08:30-18:00"), TZ)
REMIND = [-7, -3, -1, 0]
ESCALATE = [
    {"after": 1, "to": ["assignees", "responsible"]},
    {"after": 3, "to": ["lead"]},
    {"after": 5, "to": ["chief"], "repeat": 5},
]


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ)


def lad(due: date, start: date = date(2022, 1, 1), kind: str = "deadline"):  # type: ignore[no-untyped-def]
    return ladder(
        due_date=due,
        period_start=start,
        occurrence_kind=kind,
        remind=REMIND,
        escalate=ESCALATE,
        st=ST,
    )


def test_timetable_around_labour_day() -> None:
    # due Thursday 2022-05-05, the first working day after the 05-01..04 holiday
    ladder_ = lad(date(2022, 5, 5))
    assert [m.at for m in ladder_.reminders] == [
        at(2022, 4, 22, 8, 30),  # -7 working days: 04-24 (Sunday) was a 调休 workday, counted
        at(2022, 4, 27, 8, 30),  # -3
        at(2022, 4, 29, 8, 30),  # -1: the day before the holiday
        at(2022, 5, 5, 8, 30),  # 0
    ]
    assert [(m.at, m.level, m.targets) for m in ladder_.steps] == [
        (at(2022, 5, 6, 8, 30), YELLOW, ("assignees", "responsible")),
        (at(2022, 5, 9, 8, 30), YELLOW, ("lead",)),  # 05-07 (Saturday) is a 调休 workday
        (at(2022, 5, 11, 8, 30), RED, ("chief",)),
    ]
    assert all(m.kind == REMINDER and m.level == BLUE for m in ladder_.reminders)


def test_weekend_due_date_reminds_on_the_friday_before_never_after() -> None:
    ladder_ = lad(date(2022, 6, 12))  # a Sunday
    assert ladder_.reminders[-1].at == at(2022, 6, 10, 8, 30)  # offset 0 → Friday
    assert ladder_.reminders[-2].at == at(2022, 6, 9, 8, 30)
    # escalation counts working days after the Sunday: Monday is day 1
    assert ladder_.steps[0].at == at(2022, 6, 13, 8, 30)


def test_holiday_due_date_reminds_on_the_working_day_before() -> None:
    ladder_ = lad(date(2022, 10, 3))  # National Day
    assert ladder_.reminders[-1].at == at(2022, 9, 30, 8, 30)
    # Saturday 10-08 is a 调休 make-up workday: the first working day after the due day
    assert ladder_.steps[0].at == at(2022, 10, 8, 8, 30)


def test_reminders_before_the_period_started_are_dropped() -> None:
    ladder_ = lad(date(2022, 6, 30), start=date(2022, 6, 28), kind="period")
    assert [m.at.date() for m in ladder_.reminders] == [date(2022, 6, 29), date(2022, 6, 30)]


def test_progress_checks_use_the_progress_kind() -> None:
    assert {m.kind for m in lad(date(2022, 6, 30), kind="check").reminders} == {PROGRESS}


def test_one_reminder_at_a_time_when_on_schedule() -> None:
    ladder_ = lad(date(2022, 5, 31))
    progress = Progress()
    sent = []
    for now in (
        at(2022, 5, 20, 8, 30),
        at(2022, 5, 26, 8, 30),
        at(2022, 5, 30, 8, 30),
        at(2022, 5, 31, 8, 30),
    ):
        decision = decide(ladder_, progress, ST, now)
        assert len(decision.send) == 1
        sent.append(decision.send[0].offset)
        progress = decision.progress
    assert sent == [-7, -3, -1, 0]
    assert decision.next_action_at == at(2022, 6, 1, 8, 30)


def test_missed_reminders_collapse_into_the_latest() -> None:
    decision = decide(lad(date(2022, 5, 31)), Progress(), ST, at(2022, 5, 30, 10, 0))
    assert [(m.kind, m.offset) for m in decision.send] == [(REMINDER, -1)]
    assert decision.progress.reminder_step == 2


def test_after_a_week_down_only_todays_step_goes_out_to_everyone_it_stands_for() -> None:
    ladder_ = lad(date(2022, 5, 31))
    progress = decide(ladder_, Progress(), ST, at(2022, 5, 20, 9, 0)).progress  # -7 went out
    decision = decide(ladder_, progress, ST, at(2022, 6, 7, 10, 0))  # back after two weeks
    # steps due 06-01 and 06-06 (06-03 was the Dragon Boat Festival); the chief's is 06-08:
    # one message, at the step today implies, to the people of both steps; no replay
    [message] = decision.send
    assert (message.kind, message.step, message.catch_up) == (ESCALATION, 1, True)
    assert message.targets == ("assignees", "responsible", "lead")
    assert decision.progress.reminder_step == 3 and decision.progress.escalation_step == 1
    assert decision.next_action_at == at(2022, 6, 8, 8, 30)
    again = decide(ladder_, decision.progress, ST, at(2022, 6, 7, 10, 5))
    assert again.send == []


def test_repeats_every_n_working_days_and_collapse_after_downtime() -> None:
    ladder_ = lad(date(2022, 5, 31))
    chief_day = ladder_.steps[2].at
    assert chief_day == at(2022, 6, 8, 8, 30)  # 06-03 is Dragon Boat Festival
    progress = decide(ladder_, Progress(), ST, chief_day).progress
    first_repeat = decide(ladder_, progress, ST, at(2022, 6, 15, 8, 30))
    assert [(m.step, m.repeat) for m in first_repeat.send] == [(2, 1)]
    # down for three weeks: the missed repeats become one
    later = decide(ladder_, first_repeat.progress, ST, at(2022, 7, 8, 9, 0))
    assert [(m.step, m.repeat) for m in later.send] == [(2, 4)]
    assert later.next_action_at == at(2022, 7, 13, 8, 30)


def test_a_step_first_sent_late_owes_no_back_repeats() -> None:
    decision = decide(lad(date(2022, 3, 31)), Progress(), ST, at(2022, 5, 23, 9, 0))
    # a first look at an item overdue for weeks: the chief's step, once, with no repeats owed
    assert [(m.step, m.repeat, m.catch_up) for m in decision.send] == [(2, 0, True)]
    assert decision.next_action_at is not None and decision.next_action_at > at(2022, 5, 23, 9, 0)


def test_rebase_after_an_extension_counts_past_steps_as_done() -> None:
    ladder_ = lad(date(2022, 7, 29))
    now = at(2022, 7, 25, 9, 0)
    progress = rebase(ladder_, ST, now)
    assert progress.reminder_step == 0  # the -7 reminder would already have gone out
    decision = decide(ladder_, progress, ST, now)
    assert decision.send == [] and decision.next_action_at == at(2022, 7, 26, 8, 30)


def test_escalation_after_hours_waits_for_the_next_working_morning() -> None:
    ladder_ = ladder(
        due_date=date(2022, 5, 27),
        period_start=date(2022, 5, 1),
        occurrence_kind="deadline",
        remind=[],
        escalate=[{"after": 0, "to": ["lead"]}],
        st=ST,
    )
    assert ladder_.steps[0].at == at(2022, 5, 30, 8, 30)  # Friday 18:00 → Monday 08:30


def test_every_instant_is_inside_working_hours_on_a_working_day() -> None:
    day = date(2022, 1, 1)
    while day < date(2023, 1, 1):
        for message in [*lad(day).reminders, *lad(day).steps]:
            assert ST.hours.contains(message.at, TZ, ST.calendar), (day, message)
        day += timedelta(days=1)
