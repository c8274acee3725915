"""Deadline phrases → a date, or "ongoing".  Pure: the document's year is given.

Reading rules (the same ones the hand labels follow):
- "前" does not move a date ("5月10日前" is 10 May, "3月底前" the end of March), except
  after a bare month: "3月前" is before March begins, the end of February;
- 上旬 → the 10th, 中旬 → the 20th, 下旬 / 底 / 末 → the last day of the month;
- 上半年 / 年中 → 30 June, 下半年 / 年底 / 年内 → 31 December, 三季度末 → 30 September;
- a month without a year takes the document's year; 明年 / 次年 add one;
- 长期坚持 / 持续推进 / 常态化 / 即时 … in a deadline field mean ongoing (no deadline: 即时,
  "as it happens", is a standing duty, not a date to chase); in running
  text only 长期 / 常态化 / 常年 do (定期, 持续深化 describe how, not for how long).
Recurrences ("每月10日前") are not dates: :mod:`.frequency` reads those.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

from bot.extract.numbering import cn_to_int

_CN = "[一二三四五六七八九十两]"
_MONTH = r"(?P<m>1[0-2]|0?[1-9]|十[一二]?|[一二三四五六七八九])"
_DAY = rf"(?P<d>[12]\d|3[01]|0?[1-9]|[一二三]?十[一二三四五六七八九]?|{_CN})"
_Y = r"(?P<y>20\d\d|二[〇零][一二三四五六七八九〇零]{2})"
_YEAR = rf"(?:{_Y}\s*年|(?P<rel>今年|本年|当年|明年|次年|翌年))?"

_MONTH_DATE = re.compile(
    rf"{_YEAR}\s*{_MONTH}\s*月份?\s*"
    rf"(?:(?P<part>底|末|上旬|中旬|下旬|初|中(?![心央国华])|{_DAY}\s*[日号])|(?P<bare>))"
    r"(?P<before>\s*(?:之前|以前|前))?"
)
_YEAR_PART = re.compile(
    rf"(?:{_Y}\s*|(?P<rel>今|本|当|明|次))?"
    r"(?:年\s*年?\s*(?P<which>底|末|内|度内|中)|(?P<half>[上下])半年"
    r"|年?第?(?P<q>[一二三四1-4])季度(?:末|底)?)"
    r"(?P<before>\s*(?:之前|以前|前))?"
)
_ISO = re.compile(
    r"(?<!\d)(?P<y>20\d\d)\s*[-/.]\s*(?P<m>1[0-2]|0?[1-9])\s*[-/.]\s*"
    r"(?P<d>3[01]|[12]\d|0?[1-9])(?!\d)"
)
_BARE_YEAR = re.compile(r"^\s*(?P<y>20\d\d)\s*年(?:度)?\s*(?:内|前|底前?)?\s*$")

# Dates after these are reference points, not deadlines (较去年底明显上升; 每年3月底前 is a
# recurrence); numbers right before 年 make a duration (三年内).
_NOT_DEADLINE_BEFORE = re.compile(
    r"(去|上|前|每|往|近|多|[一二三四五六七八九十两\d个]|每年|每季度?|每月)$"
)

ONGOING_TEXT = re.compile(r"长期|常态化|常年")
ONGOING_FIELD = re.compile(
    r"长期|常态|持续|长效|常年|经常|全年|定期|动态|随时|日常|坚持|不定期|滚动|即时|立即|及时"
)


@dataclass(frozen=True)
class DateHit:
    value: date
    start: int
    end: int
    text: str
    explicit_year: bool = True  # False: "6月底前" took the document's year


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


_CN_YEAR_DIGITS = str.maketrans("〇零一二三四五六七八九", "00123456789")


def _year_of(y: str | None, rel: str | None, year: int) -> int:
    if y:
        return int(y.translate(_CN_YEAR_DIGITS))
    if rel and rel[0] in "明次翌":
        return year + 1
    return year


def _number(text: str) -> int | None:
    return cn_to_int(text.strip())


def _month_hit(match: re.Match[str], year: int, *, field: bool) -> date | None:
    month = _number(match["m"])
    if month is None or not 1 <= month <= 12:
        return None
    if match["bare"] is not None and not match["before"] and not field:
        # "6月" alone in running text is too weak; "6月前" or a deadline field is not.
        following = match.string[match.end() : match.end() + 2]
        if not following.startswith(("完成", "为止", "，", ",", "，")):
            return None
    y = _year_of(match["y"], match["rel"], year)
    part = match["part"] or ""
    if match["bare"] is not None and match["before"]:
        # "3月前": before March begins
        return date(y, month, 1) - timedelta(days=1)
    if match["d"]:
        day = _number(match["d"])
        if day is None or day < 1:
            return None
        return date(y, month, min(day, calendar.monthrange(y, month)[1]))
    if part in ("上旬", "初"):
        return date(y, month, 10)
    if part in ("中旬", "中"):
        return date(y, month, 20)
    return _month_end(y, month)


def _year_part_hit(match: re.Match[str], year: int) -> date | None:
    y = _year_of(match["y"], match["rel"], year)
    if match["which"]:
        return date(y, 6, 30) if match["which"] == "中" else date(y, 12, 31)
    if match["half"]:
        return date(y, 6, 30) if match["half"] == "上" else date(y, 12, 31)
    quarter = _number(match["q"]) if match["q"] else None
    if quarter:
        return _month_end(y, quarter * 3)
    return None


def find_dates(text: str, year: int, *, field: bool = False) -> list[DateHit]:
    """Every deadline-like date in ``text``, in order.  ``field``: the text is a deadline field."""
    hits: list[DateHit] = []
    taken: list[tuple[int, int]] = []

    def add(start: int, end: int, value: date | None, explicit: bool = True) -> None:
        if value is None or any(s < end and start < e for s, e in taken):
            return
        if _NOT_DEADLINE_BEFORE.search(text[max(0, start - 3) : start]):
            return
        taken.append((start, end))
        hits.append(DateHit(value, start, end, text[start:end].strip(), explicit))

    for match in _ISO.finditer(text):
        add(match.start(), match.end(), _iso(match))
    for match in _MONTH_DATE.finditer(text):
        if match.start() > 0 and text[match.start() - 1].isdigit() and not match["y"]:
            continue  # "12月" inside "2012月"? no: a digit right before means another number
        value = _month_hit(match, year, field=field)
        add(match.start(), match.end(), value, bool(match["y"] or match["rel"]))
    for match in _YEAR_PART.finditer(text):
        bare_quarter = match["q"] and not match["y"] and not match["rel"]
        if bare_quarter and text[max(0, match.start() - 1) : match.start()] == "每":
            continue
        value = _year_part_hit(match, year)
        add(match.start(), match.end(), value, bool(match["y"] or match["rel"]))
    if field:
        bare = _BARE_YEAR.match(text)
        if bare and not hits:
            hits.append(DateHit(date(int(bare["y"]), 12, 31), bare.start(), bare.end(), text))
    hits.sort(key=lambda h: h.start)
    return hits


def _iso(match: re.Match[str]) -> date | None:
    try:
        return date(int(match["y"]), int(match["m"]), int(match["d"]))
    except ValueError:
        return None


def deadline_in(text: str, year: int, *, field: bool = False) -> date | None:
    """The deadline a text sets: the latest date in it (staged dates end with the last)."""
    hits = find_dates(text, year, field=field)
    return max((h.value for h in hits), default=None)


def says_ongoing(text: str, *, field: bool = False) -> bool:
    """长期坚持 / 持续推进 / 常态化 …: the duty has no end date."""
    return ongoing_word(text, field=field) is not None


def ongoing_word(text: str, *, field: bool = False) -> str | None:
    """The word that makes ``text`` ongoing (常态化), or None."""
    match = (ONGOING_FIELD if field else ONGOING_TEXT).search(text)
    return match.group(0) if match else None


def latest(hits: list[DateHit]) -> DateHit | None:
    """The deadline of a text that stages dates: its last one."""
    return max(hits, key=lambda h: (h.value, h.start), default=None)


@dataclass(frozen=True)
class Deadline:
    """What a deadline field or an item's text says about timing."""

    due: date | None = None
    ongoing: bool = False


def read_deadline_field(text: str, year: int) -> Deadline:
    """A 完成时限 field: a date wins; otherwise an ongoing phrase; otherwise nothing."""
    due = deadline_in(text, year, field=True)
    if due is not None:
        return Deadline(due=due)
    return Deadline(ongoing=says_ongoing(text, field=True))
