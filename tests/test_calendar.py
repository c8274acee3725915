"""Working-day calendar against the real chinesecalendar data (no mocks): the 2022 dates
below are the published State Council schedule, so a regression here means wrong deadlines."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest

from bot.calendar import WorkCalendar, WorkingHours

SH = ZoneInfo("Asia/Shanghai")
HOURS = WorkingHours(time(8, 30), time(18, 0))


def _package_knows(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def _first_unknown_year_after(year: int) -> int:
    """Found from the package, so the tests keep working when a new release adds a year."""
    return next(y for y in range(year, 2200) if not _package_knows(y))


UNKNOWN = _first_unknown_year_after(2022)


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


@pytest.fixture
def cal() -> WorkCalendar:
    return WorkCalendar()


# --- statutory calendar -------------------------------------------------------------------


def test_labour_day_2022_holidays_and_make_up_days(cal: WorkCalendar) -> None:
    for d in _days(date(2022, 4, 30), date(2022, 5, 4)):
        assert not cal.is_workday(d), d
    assert cal.is_workday(date(2022, 4, 24))  # Sunday, 调休
    assert cal.is_workday(date(2022, 5, 7))  # Saturday, 调休
    assert not cal.is_workday(date(2022, 5, 8))  # ordinary Sunday
    assert cal.is_workday(date(2022, 5, 5))


def test_new_year(cal: WorkCalendar) -> None:
    for d in _days(date(2022, 1, 1), date(2022, 1, 3)):
        assert not cal.is_workday(d), d
    assert cal.is_workday(date(2022, 1, 4))
    assert cal.is_workday(date(2021, 12, 31))
    assert not cal.is_workday(date(2023, 1, 2))  # Monday in lieu of Sunday 01-01
    assert cal.is_workday(date(2023, 1, 3))


def test_national_day_2022(cal: WorkCalendar) -> None:
    for d in _days(date(2022, 10, 1), date(2022, 10, 7)):
        assert not cal.is_workday(d), d
    assert date(2022, 10, 8).weekday() == 5
    assert date(2022, 10, 9).weekday() == 6
    assert cal.is_workday(date(2022, 10, 8))
    assert cal.is_workday(date(2022, 10, 9))
    assert cal.is_workday(date(2022, 9, 30))


def test_ordinary_weekend(cal: WorkCalendar) -> None:
    assert cal.is_workday(date(2022, 6, 10))  # Friday
    assert not cal.is_workday(date(2022, 6, 11))
    assert not cal.is_workday(date(2022, 6, 12))
    assert not cal.is_workday(date(2022, 6, 3))  # Dragon Boat Festival, a Friday


def test_datetime_is_rejected(cal: WorkCalendar) -> None:
    with pytest.raises(TypeError):
        cal.is_workday(datetime(2022, 6, 10, 12, 0, tzinfo=SH))


# --- shifting and counting ----------------------------------------------------------------


def test_shift_across_labour_day(cal: WorkCalendar) -> None:
    assert cal.shift_workdays(date(2022, 4, 29), 1) == date(2022, 5, 5)
    assert cal.shift_workdays(date(2022, 5, 5), -1) == date(2022, 4, 29)
    # the Saturday make-up day 05-07 is counted, the Sunday 05-08 is not
    assert cal.shift_workdays(date(2022, 4, 29), 3) == date(2022, 5, 7)
    assert cal.shift_workdays(date(2022, 4, 29), 4) == date(2022, 5, 9)
    assert cal.shift_workdays(date(2022, 5, 9), -1) == date(2022, 5, 7)
    assert cal.shift_workdays(date(2022, 5, 9), -2) == date(2022, 5, 6)
    # starting on a holiday: the holiday itself is not counted
    assert cal.shift_workdays(date(2022, 5, 2), 1) == date(2022, 5, 5)
    assert cal.shift_workdays(date(2022, 5, 2), -1) == date(2022, 4, 29)
    # the Sunday make-up day before the holiday is counted too
    assert cal.shift_workdays(date(2022, 4, 25), -1) == date(2022, 4, 24)


def test_shift_zero_is_identity(cal: WorkCalendar) -> None:
    assert cal.shift_workdays(date(2022, 5, 1), 0) == date(2022, 5, 1)
    assert cal.shift_workdays(date(2022, 5, 5), 0) == date(2022, 5, 5)


def test_shift_round_trip_over_a_year(cal: WorkCalendar) -> None:
    start = date(2022, 1, 4)
    for n in (1, 5, 20, 60, 240):
        there = cal.shift_workdays(start, n)
        assert cal.is_workday(there)
        assert cal.workdays_after(start, there) == n
        assert cal.shift_workdays(there, -n) == start


def test_workday_on_or_before_after(cal: WorkCalendar) -> None:
    assert cal.workday_on_or_before(date(2022, 5, 3)) == date(2022, 4, 29)
    assert cal.workday_on_or_after(date(2022, 5, 3)) == date(2022, 5, 5)
    assert cal.workday_on_or_before(date(2022, 5, 5)) == date(2022, 5, 5)
    assert cal.workday_on_or_after(date(2022, 5, 5)) == date(2022, 5, 5)
    assert cal.workday_on_or_after(date(2022, 10, 1)) == date(2022, 10, 8)
    assert cal.workday_on_or_before(date(2022, 10, 7)) == date(2022, 9, 30)
    assert cal.workday_on_or_after(date(2022, 5, 7)) == date(2022, 5, 7)  # make-up Saturday


def test_workdays_after(cal: WorkCalendar) -> None:
    # 05-05, 05-06, 05-07 (make-up), 05-09
    assert cal.workdays_after(date(2022, 4, 29), date(2022, 5, 9)) == 4
    assert cal.workdays_after(date(2022, 4, 29), date(2022, 5, 4)) == 0
    assert cal.workdays_after(date(2022, 4, 28), date(2022, 4, 29)) == 1  # end inclusive
    assert cal.workdays_after(date(2022, 5, 9), date(2022, 5, 9)) == 0
    assert cal.workdays_after(date(2022, 5, 9), date(2022, 4, 29)) == 0
    assert cal.workdays_after(date(2022, 9, 30), date(2022, 10, 9)) == 2


# --- kinds and overrides ------------------------------------------------------------------


def test_kind_all() -> None:
    cal = WorkCalendar("all")
    for d in _days(date(2022, 4, 30), date(2022, 5, 8)):
        assert cal.is_workday(d)
    assert cal.shift_workdays(date(2022, 4, 29), 1) == date(2022, 4, 30)
    assert cal.shift_workdays(date(2022, 4, 29), -3) == date(2022, 4, 26)
    assert cal.workdays_after(date(2022, 4, 29), date(2022, 5, 9)) == 10
    assert cal.known(2022)
    assert cal.known(UNKNOWN)
    assert cal.is_workday(date(UNKNOWN, 1, 1))
    assert cal.fallback_years == frozenset()


def test_kind_all_honours_own_holidays() -> None:
    cal = WorkCalendar("all", holidays=[date(2022, 6, 1)])
    assert not cal.is_workday(date(2022, 6, 1))
    assert cal.shift_workdays(date(2022, 5, 31), 1) == date(2022, 6, 2)


def test_bad_kind() -> None:
    with pytest.raises(ValueError):
        WorkCalendar("us")  # type: ignore[arg-type]


def test_schedule_overrides() -> None:
    cal = WorkCalendar(
        holidays=[date(2022, 6, 8)],  # a local holiday on a Wednesday
        workdays=[date(2022, 5, 1), date(2022, 6, 11)],  # extra 调休 on a holiday and a Saturday
    )
    assert not cal.is_workday(date(2022, 6, 8))
    assert cal.is_workday(date(2022, 5, 1))
    assert cal.is_workday(date(2022, 6, 11))
    assert cal.shift_workdays(date(2022, 6, 7), 1) == date(2022, 6, 9)
    assert cal.shift_workdays(date(2022, 6, 10), 1) == date(2022, 6, 11)
    assert cal.shift_workdays(date(2022, 4, 29), 1) == date(2022, 5, 1)
    assert cal.holidays == frozenset({date(2022, 6, 8)})
    # untouched dates keep the statutory answer
    assert not cal.is_workday(date(2022, 5, 2))


def test_conflicting_overrides_rejected() -> None:
    with pytest.raises(ValueError, match="2022-06-08"):
        WorkCalendar(holidays=[date(2022, 6, 8)], workdays=[date(2022, 6, 8)])


def test_no_working_day_at_all_does_not_loop() -> None:
    days = _days(date(2021, 1, 1), date(2034, 12, 31))
    cal = WorkCalendar("all", holidays=days)
    with pytest.raises(ValueError, match="no working day"):
        cal.shift_workdays(date(2022, 6, 1), 1)
    with pytest.raises(ValueError, match="no working day"):
        cal.workday_on_or_before(date(2034, 6, 1))


# --- years the package does not know ------------------------------------------------------


def test_known_matches_package(cal: WorkCalendar) -> None:
    assert cal.known(2022)
    assert cal.known(UNKNOWN - 1)
    assert not cal.known(UNKNOWN)
    assert not cal.known(1999)
    assert cal.fallback_years == frozenset()  # asking is not using


def test_unknown_year_falls_back_to_monday_friday(
    cal: WorkCalendar, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="dutybot.calendar")
    for d in _days(date(UNKNOWN, 1, 1), date(UNKNOWN, 12, 31)):
        assert cal.is_workday(d) == (d.weekday() < 5), d
    assert cal.fallback_years == frozenset({UNKNOWN})
    warnings = [r for r in caplog.records if r.name == "dutybot.calendar"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert str(UNKNOWN) in warnings[0].getMessage()

    # shifting across the year boundary uses the fallback too, without more warnings
    assert cal.shift_workdays(date(UNKNOWN, 1, 1), 300).year == UNKNOWN + 1
    warnings = [r for r in caplog.records if r.name == "dutybot.calendar"]
    assert len(warnings) == 2  # one for UNKNOWN + 1
    assert cal.fallback_years == frozenset({UNKNOWN, UNKNOWN + 1})


def test_fallback_warning_is_per_instance(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="dutybot.calendar")
    WorkCalendar().is_workday(date(UNKNOWN, 3, 3))
    WorkCalendar().is_workday(date(UNKNOWN, 3, 4))
    assert len([r for r in caplog.records if r.name == "dutybot.calendar"]) == 2


def test_fallback_honours_schedule_lists(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="dutybot.calendar")
    jan1 = date(UNKNOWN, 1, 1)
    saturday = next(d for d in _days(jan1, jan1 + timedelta(days=6)) if d.weekday() == 5)
    monday = next(d for d in _days(jan1, jan1 + timedelta(days=6)) if d.weekday() == 0)
    cal = WorkCalendar(holidays=[monday], workdays=[saturday])
    assert not cal.is_workday(monday)
    assert cal.is_workday(saturday)
    assert cal.fallback_years == frozenset()  # overrides answered, no guess made yet
    assert not caplog.records
    assert cal.is_workday(monday + timedelta(days=1))
    assert cal.fallback_years == frozenset({UNKNOWN})


def test_years_before_the_data_fall_back_too(cal: WorkCalendar) -> None:
    assert not cal.is_workday(date(1999, 10, 2))  # Saturday
    assert cal.is_workday(date(1999, 10, 4))  # National Day in reality, Monday by fallback
    assert 1999 in cal.fallback_years


def test_planning_a_year_is_fast(cal: WorkCalendar) -> None:
    """Planning re-shifts ~100 tasks over a year many times; the cache keeps this cheap."""
    starts = [date(2022, 1, 1) + timedelta(days=3 * i) for i in range(100)]
    for _ in range(20):
        for s in starts:
            cal.shift_workdays(s, 5)
            cal.shift_workdays(s, -3)
            cal.workday_on_or_before(s)
            cal.workdays_after(s, s + timedelta(days=30))


# --- working hours ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("08:30-18:00", time(8, 30), time(18, 0)),
        (" 8:30 - 17:30 ", time(8, 30), time(17, 30)),
        ("00:00-23:59", time(0, 0), time(23, 59)),
        ("09：00～17：00", time(9, 0), time(17, 0)),
    ],
)
def test_parse_good(text: str, start: time, end: time) -> None:
    hours = WorkingHours.parse(text)
    assert hours == WorkingHours(start, end)


def test_parse_round_trips() -> None:
    assert str(HOURS) == "08:30-18:00"
    assert WorkingHours.parse(str(HOURS)) == HOURS


@pytest.mark.parametrize(
    "text",
    [
        "",
        "08:30",
        "0830-1800",
        "08:30-18:00-19:00",
        "24:00-25:00",
        "08:60-18:00",
        "08:30-24:00",
        "18:00-08:30",  # start after end
        "08:30-08:30",  # empty
        "eight to six",
    ],
)
def test_parse_bad(text: str) -> None:
    with pytest.raises(ValueError, match=r"working hours|time of day"):
        WorkingHours.parse(text)


def test_constructor_validates() -> None:
    with pytest.raises(ValueError, match="start before"):
        WorkingHours(time(18, 0), time(8, 30))


def test_day_start_end_are_aware() -> None:
    start = HOURS.day_start(date(2022, 6, 10), SH)
    end = HOURS.day_end(date(2022, 6, 10), SH)
    assert start == datetime(2022, 6, 10, 8, 30, tzinfo=SH)
    assert end == datetime(2022, 6, 10, 18, 0, tzinfo=SH)
    assert start.utcoffset() == timedelta(hours=8)
    assert start.astimezone(UTC) == datetime(2022, 6, 10, 0, 30, tzinfo=UTC)


def test_contains(cal: WorkCalendar) -> None:
    assert HOURS.contains(datetime(2022, 6, 10, 8, 30, tzinfo=SH), SH, cal)  # start inclusive
    assert HOURS.contains(datetime(2022, 6, 10, 17, 59, 59, tzinfo=SH), SH, cal)
    assert not HOURS.contains(datetime(2022, 6, 10, 18, 0, tzinfo=SH), SH, cal)  # end exclusive
    assert not HOURS.contains(datetime(2022, 6, 10, 8, 29, tzinfo=SH), SH, cal)
    assert not HOURS.contains(datetime(2022, 6, 11, 10, 0, tzinfo=SH), SH, cal)  # Saturday
    assert HOURS.contains(datetime(2022, 5, 7, 10, 0, tzinfo=SH), SH, cal)  # make-up Saturday
    assert not HOURS.contains(datetime(2022, 5, 2, 10, 0, tzinfo=SH), SH, cal)  # holiday
    # 01:00 UTC on Monday is 09:00 in Shanghai
    assert HOURS.contains(datetime(2022, 6, 13, 1, 0, tzinfo=UTC), SH, cal)
    # 12:00 UTC on Friday is 20:00 in Shanghai
    assert not HOURS.contains(datetime(2022, 6, 10, 12, 0, tzinfo=UTC), SH, cal)


def test_naive_instant_rejected(cal: WorkCalendar) -> None:
    with pytest.raises(ValueError, match="aware"):
        HOURS.contains(datetime(2022, 6, 10, 10, 0), SH, cal)
    with pytest.raises(ValueError, match="aware"):
        HOURS.next_slot(datetime(2022, 6, 10, 10, 0), SH, cal)


def test_next_slot_inside_hours_is_same_instant(cal: WorkCalendar) -> None:
    t = datetime(2022, 6, 9, 11, 15, 42, tzinfo=SH)
    slot = HOURS.next_slot(t, SH, cal)
    assert slot == t
    assert slot.tzinfo is SH


def test_next_slot_before_start_is_same_day(cal: WorkCalendar) -> None:
    t = datetime(2022, 6, 9, 6, 0, tzinfo=SH)
    assert HOURS.next_slot(t, SH, cal) == datetime(2022, 6, 9, 8, 30, tzinfo=SH)


def test_next_slot_after_end_is_next_workday(cal: WorkCalendar) -> None:
    t = datetime(2022, 6, 9, 18, 0, tzinfo=SH)
    assert HOURS.next_slot(t, SH, cal) == datetime(2022, 6, 10, 8, 30, tzinfo=SH)


def test_next_slot_friday_evening_is_monday(cal: WorkCalendar) -> None:
    t = datetime(2022, 6, 10, 19, 0, tzinfo=SH)
    assert HOURS.next_slot(t, SH, cal) == datetime(2022, 6, 13, 8, 30, tzinfo=SH)
    # a Saturday morning "before start" must still skip the weekend
    t = datetime(2022, 6, 11, 7, 0, tzinfo=SH)
    assert HOURS.next_slot(t, SH, cal) == datetime(2022, 6, 13, 8, 30, tzinfo=SH)


def test_next_slot_eve_of_labour_day(cal: WorkCalendar) -> None:
    t = datetime(2022, 4, 29, 18, 30, tzinfo=SH)
    assert HOURS.next_slot(t, SH, cal) == datetime(2022, 5, 5, 8, 30, tzinfo=SH)


def test_next_slot_make_up_saturday(cal: WorkCalendar) -> None:
    t = datetime(2022, 5, 6, 20, 0, tzinfo=SH)
    assert HOURS.next_slot(t, SH, cal) == datetime(2022, 5, 7, 8, 30, tzinfo=SH)


def test_next_slot_from_utc(cal: WorkCalendar) -> None:
    # Thursday 16:30 UTC is Friday 00:30 in Shanghai: wait for Friday 08:30 local
    t = datetime(2022, 6, 9, 16, 30, tzinfo=UTC)
    slot = HOURS.next_slot(t, SH, cal)
    assert slot == datetime(2022, 6, 10, 8, 30, tzinfo=SH)
    assert slot.tzinfo is SH
    assert slot.astimezone(UTC) == datetime(2022, 6, 10, 0, 30, tzinfo=UTC)
    # Monday 01:00 UTC is 09:00 in Shanghai: already inside hours, same instant
    t = datetime(2022, 6, 13, 1, 0, tzinfo=UTC)
    slot = HOURS.next_slot(t, SH, cal)
    assert slot == t
    assert slot.tzinfo is SH
    # Friday 10:30 UTC is 18:30 Shanghai: Monday 08:30 local
    t = datetime(2022, 6, 10, 10, 30, tzinfo=UTC)
    assert HOURS.next_slot(t, SH, cal) == datetime(2022, 6, 13, 8, 30, tzinfo=SH)


def test_next_slot_kind_all() -> None:
    cal = WorkCalendar("all")
    t = datetime(2022, 5, 1, 19, 0, tzinfo=SH)
    assert HOURS.next_slot(t, SH, cal) == datetime(2022, 5, 2, 8, 30, tzinfo=SH)
