"""Occurrence planning: every `every` form, times, by: day N, from/until, ongoing checks."""

from __future__ import annotations

import itertools
from datetime import date

import pytest

from bot.calendar import WorkCalendar
from bot.occurrences import CHECK, DEADLINE, PERIOD, Timing, plan

CN = WorkCalendar("cn")
START = date(2022, 5, 23)  # a Monday; the seed list's issue date
WIN = (date(2022, 1, 1), date(2023, 12, 31))


def dues(timing: Timing, window: tuple[date, date] = WIN) -> list[str]:
    return [p.due_date.isoformat() for p in plan(timing, CN, *window)]


def test_deadline_is_one_occurrence_whatever_the_window() -> None:
    [occ] = plan(
        Timing("deadline", START, due=date(2022, 12, 31)), CN, date(2030, 1, 1), date(2030, 2, 1)
    )
    assert (occ.kind, occ.period_start, occ.due_date) == (DEADLINE, START, date(2022, 12, 31))


def test_deadline_before_start_keeps_the_written_date() -> None:
    [occ] = plan(Timing("deadline", START, due=date(2022, 3, 31)), CN, *WIN)
    assert occ.due_date == date(2022, 3, 31) and occ.period_start == date(2022, 3, 31)


def test_quarter_clipped_first_period_then_aligned() -> None:
    timing = Timing("recurring", START, every="quarter", until=date(2022, 12, 31))
    got = plan(timing, CN, *WIN)
    assert [(p.period_start.isoformat(), p.period_end.isoformat()) for p in got] == [
        ("2022-05-23", "2022-06-30"),
        ("2022-07-01", "2022-09-30"),
        ("2022-10-01", "2022-12-31"),
    ]
    # due on each period's last working day: 2022-09-30 is a Friday; 2022-12-31 a Saturday
    assert [p.due_date.isoformat() for p in got] == ["2022-06-30", "2022-09-30", "2022-12-30"]
    assert all(p.kind == PERIOD for p in got)


def test_month_by_day_2_skips_a_due_day_before_from() -> None:
    timing = Timing("recurring", START, every="month", by_day=2, until=date(2022, 9, 30))
    assert dues(timing) == ["2022-06-02", "2022-07-02", "2022-08-02", "2022-09-02"]


def test_times_is_carried_per_period() -> None:
    timing = Timing("recurring", START, every="month", times=2, until=date(2022, 7, 31))
    got = plan(timing, CN, *WIN)
    assert [p.times_required for p in got] == [2, 2, 2]
    assert [p.due_date.isoformat() for p in got] == ["2022-05-31", "2022-06-30", "2022-07-29"]


def test_week_due_on_last_working_day_including_make_up_saturday() -> None:
    # the week of 2022-05-02 holds Labour Day; Saturday 2022-05-07 is a 调休 workday
    timing = Timing("recurring", date(2022, 4, 25), every="week", until=date(2022, 5, 15))
    assert dues(timing) == ["2022-04-29", "2022-05-07", "2022-05-13"]


def test_week_entirely_holiday_falls_back_to_period_end() -> None:
    # 2022-10-01..07 is National Day: no working day in Mon 10-03 .. Sun 10-09 except Sat/Sun 10-08/09
    timing = Timing("recurring", date(2022, 10, 3), every="week", until=date(2022, 10, 9))
    assert dues(timing) == ["2022-10-09"]


def test_day_and_workday() -> None:
    days = Timing("recurring", date(2022, 4, 29), every="day", until=date(2022, 5, 3))
    assert dues(days) == ["2022-04-29", "2022-04-30", "2022-05-01", "2022-05-02", "2022-05-03"]
    workdays = Timing("recurring", date(2022, 4, 29), every="workday", until=date(2022, 5, 9))
    assert dues(workdays) == ["2022-04-29", "2022-05-05", "2022-05-06", "2022-05-07", "2022-05-09"]


def test_half_year_and_year() -> None:
    half = Timing("recurring", START, every="half-year", until=date(2023, 12, 31))
    assert dues(half) == ["2022-06-30", "2022-12-30", "2023-06-30", "2023-12-29"]
    year = Timing("recurring", START, every="year", until=date(2023, 12, 31))
    assert dues(year) == ["2022-12-30", "2023-12-29"]


def test_rrule_instances_are_due_days() -> None:
    timing = Timing("recurring", START, every="FREQ=MONTHLY;BYMONTHDAY=2", until=date(2022, 8, 31))
    got = plan(timing, CN, *WIN)
    assert [(p.period_start.isoformat(), p.due_date.isoformat()) for p in got] == [
        ("2022-05-23", "2022-06-02"),
        ("2022-06-03", "2022-07-02"),
        ("2022-07-03", "2022-08-02"),
    ]


def test_until_stops_periods_and_clips_the_last() -> None:
    timing = Timing("recurring", START, every="month", until=date(2022, 7, 15))
    got = plan(timing, CN, *WIN)
    assert [(p.period_end.isoformat(), p.due_date.isoformat()) for p in got][-1] == (
        "2022-07-15",
        "2022-07-15",
    )
    assert len(got) == 3


def test_ongoing_checks_every_ongoing_check_period() -> None:
    timing = Timing("ongoing", START, check_every="quarter")
    got = plan(timing, CN, date(2022, 5, 1), date(2022, 12, 31))
    assert [p.kind for p in got] == [CHECK] * 3
    assert [p.due_date.isoformat() for p in got] == ["2022-06-30", "2022-09-30", "2022-12-30"]


def test_window_is_a_rolling_horizon_not_the_infinite_future() -> None:
    timing = Timing("recurring", START, every="month")  # open-ended
    got = plan(timing, CN, date(2022, 8, 15), date(2022, 10, 15))
    assert [p.due_date.isoformat() for p in got] == ["2022-08-31", "2022-09-30"]


@pytest.mark.parametrize(
    "every", ["day", "workday", "week", "month", "quarter", "half-year", "year"]
)
def test_plans_are_contiguous_and_never_repeat_a_period(every: str) -> None:
    timing = Timing("recurring", START, every=every, until=date(2023, 6, 30))
    got = plan(timing, CN, *WIN)
    starts = [p.period_start for p in got]
    assert len(starts) == len(set(starts))
    for earlier, later in itertools.pairwise(got):
        assert earlier.period_end < later.period_start
        assert earlier.due_date <= later.due_date
    for p in got:
        assert p.period_start <= p.due_date <= p.period_end
