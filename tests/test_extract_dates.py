"""Deadline phrases → dates (the document's year given), and what is not a deadline."""

from __future__ import annotations

from datetime import date

import pytest

from bot.extract.dates import deadline_in, find_dates, read_deadline_field, says_ongoing

Y = 2022


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        # every example of the issue
        ("2022年5月底", date(2022, 5, 31)),
        ("6月底前", date(2022, 6, 30)),
        ("5月上旬", date(2022, 5, 10)),
        ("5月中旬", date(2022, 5, 20)),
        ("5月下旬", date(2022, 5, 31)),
        ("2022年3月前", date(2022, 2, 28)),  # before March begins
        ("9月前", date(2022, 8, 31)),
        ("1月前", date(2021, 12, 31)),
        ("11月份前", date(2022, 10, 31)),
        ("2023年年底前", date(2023, 12, 31)),
        ("年底前", date(2022, 12, 31)),
        ("2023年1月底前", date(2023, 1, 31)),
        ("即日起至5月31日", date(2022, 5, 31)),
        ("5月10日前", date(2022, 5, 10)),
        # and more
        ("上半年", date(2022, 6, 30)),
        ("下半年", date(2022, 12, 31)),
        ("三季度末", date(2022, 9, 30)),
        ("第一季度", date(2022, 3, 31)),
        ("2023年第二季度末", date(2023, 6, 30)),
        ("年内", date(2022, 12, 31)),
        ("年中", date(2022, 6, 30)),
        ("今年底", date(2022, 12, 31)),
        ("明年3月底", date(2023, 3, 31)),
        ("2022年底", date(2022, 12, 31)),
        ("十二月底", date(2022, 12, 31)),
        ("6月初", date(2022, 6, 10)),
        ("2月底前", date(2022, 2, 28)),
        ("2024年2月底", date(2024, 2, 29)),
        ("6月30日前", date(2022, 6, 30)),
        ("6月30号", date(2022, 6, 30)),
        ("2022-05-31", date(2022, 5, 31)),
        ("2022/6/3", date(2022, 6, 3)),
        ("2022年6月底前完成试点；9月底前全面完成；12月底前实现全覆盖", date(2022, 12, 31)),
        ("二〇二二年五月二十三日", date(2022, 5, 23)),
    ],
)
def test_deadline_phrases(phrase: str, expected: date) -> None:
    assert deadline_in(phrase, Y) == expected
    assert read_deadline_field(phrase, Y).due == expected


@pytest.mark.parametrize(
    "text",
    [
        "每月10日前报送",  # a recurrence, read by frequency.py
        "每年3月底前完成",
        "举报、查核、奖励兑现量较去年底明显上升",  # a reference point
        "三年内完成",  # a duration
        "贯彻“3.31”全国安全生产电视电话会议精神",
        "汲取“9.27”事故教训",
        "全年生产安全事故死亡人数严格控制在指标范围内",
        "12个月",
        "6月",  # a bare month in running text is too weak
    ],
)
def test_not_deadlines_in_text(text: str) -> None:
    assert find_dates(text, Y) == []


def test_a_bare_month_counts_in_a_deadline_field() -> None:
    assert read_deadline_field("6月", Y).due == date(2022, 6, 30)
    assert read_deadline_field("5月至9月", Y).due == date(2022, 9, 30)  # the end of the range
    assert read_deadline_field("2023年", Y).due == date(2023, 12, 31)


@pytest.mark.parametrize(
    "field", ["长期坚持", "持续推进", "常态化", "全年", "长期", "动态调整", "即时", "立即报告"]
)
def test_ongoing_fields(field: str) -> None:
    read = read_deadline_field(field, Y)
    assert read.ongoing and read.due is None


def test_a_date_beats_ongoing_words_in_a_field() -> None:
    read = read_deadline_field("2022年6月底前完成，长期坚持", Y)
    assert read.due == date(2022, 6, 30) and not read.ongoing


def test_ongoing_in_running_text() -> None:
    assert says_ongoing("常态化开展“打非”工作")
    assert says_ongoing("切实推动长期抓标准化建设")
    assert not says_ongoing("定期公开曝光违法违规行为")  # how, not for how long
    assert not says_ongoing("持续提升执法检查效能")
    assert not says_ongoing("建立安全生产举报奖励长效机制")
    assert not says_ongoing("制定部门安全生产权力和责任清单")


def test_positions_are_reported() -> None:
    hits = find_dates("在2022年5月中旬前，制定方案", Y)
    assert [(h.value, h.text) for h in hits] == [(date(2022, 5, 20), "2022年5月中旬前")]
    assert hits[0].explicit_year
    [hit] = find_dates("2023年年底前完成200公里", Y)
    assert (hit.text, hit.value) == ("2023年年底前", date(2023, 12, 31))
    [hit] = find_dates("9月前完成改造", Y)
    assert (hit.text, hit.explicit_year) == ("9月前", False)
