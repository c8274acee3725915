"""Dates as officials type them: 2022-06-15, 6月15日, 六月十五号, 下周五, 月底, 明天, 3天后.

Everything is relative to an injected ``today`` (the schedule's local date), never the
wall clock.  A month and day without a year that has already passed means next year:
people asking for more time mean the future.  Anything not understood gives ``None``,
so the caller can ask again instead of guessing.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

_FULL_WIDTH = str.maketrans("０１２３４５６７８９／－．", "0123456789/-.")
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}  # fmt: skip
_CN_NUMBER = re.compile(r"[零〇一二两三四五六七八九十]+(?=[月日号天周个])")
_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "七": 6}
_EN_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _cn_to_int(text: str) -> int | None:
    """十五 → 15, 二十一 → 21, 三十 → 30, 七 → 7 (what dates need, up to 99)."""
    if "十" not in text:
        return _CN_DIGITS[text] if len(text) == 1 else None
    tens, _, ones = text.partition("十")
    if len(tens) > 1 or len(ones) > 1:
        return None
    value = (_CN_DIGITS.get(tens, -100) if tens else 1) * 10
    value += _CN_DIGITS.get(ones, -100) if ones else 0
    return value if value > 0 else None


def normalise(text: str) -> str:
    """Full-width digits to ASCII, Chinese numerals before 月/日/号/天/周/个 to digits."""
    text = text.translate(_FULL_WIDTH).strip()

    def arabic(match: re.Match[str]) -> str:
        value = _cn_to_int(match.group())
        return str(value) if value is not None else match.group()

    return _CN_NUMBER.sub(arabic, text)


@dataclass(frozen=True)
class Found:
    day: date
    start: int  # where the date was found in the normalised text
    end: int


def _safe(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _add_months(day: date, months: int) -> tuple[int, int]:
    index = day.year * 12 + day.month - 1 + months
    return index // 12, index % 12 + 1


def _future(today: date, month: int, day: int | None) -> date | None:
    """This year's date, or next year's when this year's has passed."""
    for year in (today.year, today.year + 1):
        found = _month_end(year, month) if day is None else _safe(year, month, day)
        if found is None:
            return None
        if found >= today:
            return found
    return None


def _weekday(today: date, weeks: int | None, weekday: int) -> date:
    """``weeks`` None: the coming one (today counts); 0 this week; 1 next week..."""
    monday = today - timedelta(days=today.weekday())
    if weeks is None:
        target = monday + timedelta(days=weekday)
        return target if target >= today else target + timedelta(days=7)
    return monday + timedelta(days=7 * weeks + weekday)


_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?"), "ymd"),
    (re.compile(r"(?<!\d)(下个?|本|这个?)?月\s*(\d{1,2})\s*[日号]"), "rel_month_day"),
    (re.compile(r"(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?"), "md"),
    (re.compile(r"(\d{1,2})\s*月\s*(?:底|末)"), "month_end"),
    (re.compile(r"(?<!\d)(下个?|本|这个?)?月\s*(?:底|末)"), "rel_month_end"),
    (
        re.compile(r"(下下个?|下个?|本|这个?)?(?:周|星期|礼拜)\s*([一二三四五六日天七1-7])"),
        "weekday",
    ),
    (re.compile(r"大后天|后天|明天|今天"), "named"),
    (re.compile(r"(\d{1,3})\s*(?:天|日)\s*(?:后|之后|以后)"), "days_after"),
    (re.compile(r"(\d{1,2})\s*(?:个)?(?:周|星期|礼拜)\s*(?:后|之后|以后)"), "weeks_after"),
    (re.compile(r"(\d{1,2})/(\d{1,2})(?!\d)"), "md"),
    (
        re.compile(
            r"\b(next\s+)?(mon|tue|wed|thu|fri|sat|sun)(?:day|sday|nesday|rsday|urday)?\b",
            re.IGNORECASE,
        ),
        "en_weekday",
    ),
    (re.compile(r"\b(tomorrow|today)\b", re.IGNORECASE), "en_named"),
    (re.compile(r"\bin\s+(\d{1,3})\s+days?\b", re.IGNORECASE), "days_after"),
]


def _resolve(kind: str, m: re.Match[str], today: date) -> date | None:
    if kind == "ymd":
        return _safe(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if kind == "md":
        month, day = int(m.group(1)), int(m.group(2))
        return _future(today, month, day) if 1 <= month <= 12 else None
    if kind == "month_end":
        month = int(m.group(1))
        return _future(today, month, None) if 1 <= month <= 12 else None
    if kind in ("rel_month_day", "rel_month_end"):
        ahead = 1 if (m.group(1) or "").startswith("下") else 0
        year, month = _add_months(today, ahead)
        if kind == "rel_month_end":
            return _month_end(year, month)
        return _safe(year, month, int(m.group(2)))
    if kind == "weekday":
        prefix, char = m.group(1) or "", m.group(2)
        weekday = int(char) - 1 if char.isdigit() else _WEEKDAYS[char]
        weeks = 2 if prefix.startswith("下下") else 1 if prefix.startswith("下") else None
        weeks = 0 if prefix.startswith(("本", "这")) else weeks
        return _weekday(today, weeks, weekday)
    if kind == "named":
        offset = {"今天": 0, "明天": 1, "后天": 2, "大后天": 3}[m.group()]
        return today + timedelta(days=offset)
    if kind == "days_after":
        return today + timedelta(days=int(m.group(1)))
    if kind == "weeks_after":
        return today + timedelta(weeks=int(m.group(1)))
    if kind == "en_weekday":
        weekday = _EN_WEEKDAYS.index(m.group(2).lower())
        return _weekday(today, 1 if m.group(1) else None, weekday)
    if kind == "en_named":
        return today + timedelta(days=1 if m.group(1).lower() == "tomorrow" else 0)
    return None


def find_date(text: str, today: date) -> Found | None:
    """The first date mentioned anywhere in ``text`` (positions refer to normalise(text))."""
    normal = normalise(text)
    best: tuple[int, int, date] | None = None
    for pattern, kind in _PATTERNS:
        for match in pattern.finditer(normal):
            day = _resolve(kind, match, today)
            if day is None:
                continue
            if best is None or match.start() < best[0]:
                best = (match.start(), match.end(), day)
            break
    return Found(best[2], best[0], best[1]) if best else None


def parse_date(text: str, today: date) -> date | None:
    """A date from a reply that should be one (an extension's new deadline)."""
    found = find_date(text, today)
    return found.day if found else None
