"""Dates as officials type them, relative to an injected today (never the wall clock)."""

from __future__ import annotations

from datetime import date

import pytest

from bot.conversation.dates import find_date, normalise, parse_date

WEDNESDAY = date(2022, 6, 8)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-06-15", date(2022, 6, 15)),
        ("2022/6/15", date(2022, 6, 15)),
        ("2022年6月15日", date(2022, 6, 15)),
        ("２０２２－０６－１５", date(2022, 6, 15)),  # full-width
        ("6月15日", date(2022, 6, 15)),
        ("6月15号", date(2022, 6, 15)),
        ("六月十五号", date(2022, 6, 15)),
        ("十二月三十一日", date(2022, 12, 31)),
        ("5月1日", date(2023, 5, 1)),  # passed this year: next year's
        ("12/25", date(2022, 12, 25)),
        ("下周五", date(2022, 6, 17)),  # Friday of next week
        ("周五", date(2022, 6, 10)),  # the coming Friday
        ("星期一", date(2022, 6, 13)),  # this week's Monday has passed
        ("本周一", date(2022, 6, 6)),
        ("下下周一", date(2022, 6, 20)),
        ("星期天", date(2022, 6, 12)),
        ("下周日", date(2022, 6, 19)),
        ("月底", date(2022, 6, 30)),
        ("6月底前", date(2022, 6, 30)),
        ("下个月10号", date(2022, 7, 10)),
        ("下月底", date(2022, 7, 31)),
        ("今天", WEDNESDAY),
        ("明天", date(2022, 6, 9)),
        ("后天", date(2022, 6, 10)),
        ("大后天", date(2022, 6, 11)),
        ("3天后", date(2022, 6, 11)),
        ("两周后", date(2022, 6, 22)),
        ("next friday", date(2022, 6, 17)),
        ("Friday", date(2022, 6, 10)),
        ("tomorrow", date(2022, 6, 9)),
        ("in 5 days", date(2022, 6, 13)),
        ("延期到6月20日，设备未到货", date(2022, 6, 20)),
    ],
)
def test_understood(text: str, expected: date) -> None:
    assert parse_date(text, WEDNESDAY) == expected


@pytest.mark.parametrize(
    "text", ["", "过几天吧", "this month", "2/30", "13月1日", "2022-02-30", "wedding", "month"]
)
def test_not_understood_gives_none(text: str) -> None:
    assert parse_date(text, WEDNESDAY) is None


def test_year_end_rolls_into_next_year() -> None:
    assert parse_date("1月10日", date(2022, 12, 20)) == date(2023, 1, 10)
    assert parse_date("下周一", date(2022, 12, 30)) == date(2023, 1, 2)
    assert parse_date("下个月5号", date(2022, 12, 30)) == date(2023, 1, 5)


def test_find_date_says_where_the_reason_starts() -> None:
    text = "延期到下周五，因为设备未到货"
    found = find_date(text, WEDNESDAY)
    assert found is not None and found.day == date(2022, 6, 17)
    assert normalise(text)[found.end :] == "，因为设备未到货"


def test_normalise_leaves_weekdays_alone() -> None:
    assert normalise("下周五前完成十五份") == "下周五前完成十五份"
    assert normalise("三十日") == "30日"
