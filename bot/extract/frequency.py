"""Frequency phrases → ``every`` + ``times`` (+ ``by``).  Pure.

每日 / 每周 / 每月 / 每季度 / 每半年 / 每年 / 工作日 name the period; 每旬 (every ten days)
is three times a month, the format having no ten-day period; 至少…N次, 不少于N次,
N次以上, 每月至少检查2家 give ``times`` (a head-count, 不少于100名, does not); 每月2日前
gives ``by: day 2``.  The terse forms of the same duties ("周检查、月通报", "班组日排查",
"一月一调度", "每双月") count too.  Slogans in quotes ("日周月"隐患排查) name a system,
not a period, and are skipped ("一月一调度" says once a month even when quoted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.extract.numbering import cn_to_int

_PERIODS = {
    "日": "day",
    "天": "day",
    "工作日": "workday",
    "个工作日": "workday",
    "周": "week",
    "星期": "week",
    "个星期": "week",
    "月": "month",
    "个月": "month",
    "月度": "month",
    "季": "quarter",
    "季度": "quarter",
    "个季度": "quarter",
    "半年": "half-year",
    "年": "year",
    "年度": "year",
    "一年": "year",
}
_MULTI = {"week": "WEEKLY", "month": "MONTHLY", "year": "YEARLY", "day": "DAILY"}

_EVERY = re.compile(
    r"每(?P<n>[两二三四五六2-6双])?(?P<p>个工作日|工作日|个星期|星期|个季度|季度|个月|月度|半年|年度|一年|[日天周旬月季年])"
)
# periods the format has no word for, as a multiple of one it has: a 旬 is a third of a month
_PER_MONTH = {"旬": 3}
# "一月一调度、一季一通报", "半年一总结": once per period, quoted or not (the words say it)
_ONE_PER = re.compile(
    r"(?:(?<![\d一二三四五六七八九十两每第])一(?P<p>周|旬|月|季度|季|年)|(?P<half>半年))"
    r"一(?![日号次个些定起切直般致体同样方道律共批项类部])(?=[\u4e00-\u9fff])"
)
# "一年两次", "半年一次", "一季度一次": the count right after the period (not "一次性")
_N_PER = re.compile(
    r"(?:(?<![\d一二三四五六七八九十两每第])一(?P<p>周|旬|月|季度|季|年)|(?P<half>半年))"
    r"(?=[一二两三四五六1-6]次(?!性))"
)
_WORKDAY = re.compile(r"(?<![\d一二三四五六七八九十个每])工作日(?!内|之内|以内|前)")
_TERSE = re.compile(
    r"(?<![\d一二三四五六七八九十百个每本当上下同次全去今明前后该整近逐按当])"
    r"(?P<p>[日周月季年])"
    r"(?P<verb>检查|排查|调度|通报|研判|巡查|报告|报送|总结|分析|例会|会商|讲评|督查|抽查|考核|点评)"
)
_PER_PERIOD = re.compile(r"按(?P<p>周|月|季度|季|年)(?!度|份|计|均)")
_BY_DAY = re.compile(
    r"^\s*(?P<d>[12]\d|3[01]|0?[1-9]|[一二三]?十[一二三四五六七八九]?|[一二三四五六七八九])"
    r"\s*[日号]\s*(?:前|之前|以前)"
)
_NUM = r"(?P<n>\d{1,3}(?!\d)|[一二两三四五六七八九十]{1,3}(?![一二两三四五六七八九十]))"
# Only a count of completions is ``times``: "至少2次", "不少于2家"; a head-count or a
# quantity ("不少于100名", "500人次", "20辆", "30公里") is the size of each duty, not how
# often it is done.
_EVENT_UNITS = "次|家|场|轮|批|条|期|篇|遍|回"
_AT_LEAST = re.compile(
    rf"(?:至少|不少于|不低于|最少|起码|不得少于)\s*{_NUM}\s*(?=(?:{_EVENT_UNITS})(?!次))"
)
_COUNT = re.compile(rf"{_NUM}\s*(?P<u>{_EVENT_UNITS})(?:以上|及以上)?")
# a clause ends at a full stop, or at a comma that opens another period's scope
# ("每季度…1次，全年不少于4次": the 4 belongs to the year, not the quarter)
_CLAUSE_END = re.compile(r"[。；;！!？?\n]|，(?=[^，。；]*?(?:每|全年|年内|全季|全月|当年|本年))")
_PHRASE_END = re.compile(r"[。；;，,\n]")
_QUOTED = re.compile(r"“[^”]{0,12}”|\"[^\"]{0,12}\"|「[^」]{0,12}」|‘[^’]{0,12}’")
_PER_DAY_PENALTY = re.compile(r"按日")


@dataclass(frozen=True)
class Frequency:
    """One recurrence: ``every`` period, ``times`` per period, due ``by`` in the period."""

    every: str
    times: int = 1
    by: str = "end"
    phrase: str = ""  # the clause it was read from, for titles and review
    start: int = 0

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.every, self.times, self.by)

    def label(self) -> str:
        """``month*2@day 2``: the compact form the hand labels use."""
        text = f"{self.every}*{self.times}"
        return text if self.by == "end" else f"{text}@{self.by.replace(' ', '')}"


def _mask_quotes(text: str) -> str:
    """Blank out short quoted slogans so "日周月" is not read as three periods."""
    return _QUOTED.sub(lambda m: "＿" * len(m.group(0)), text)


def _period(word: str, n: str | None) -> str:
    if word in _PER_MONTH:
        return "month"
    period = _PERIODS[word]
    if n:
        count = 2 if n == "双" else cn_to_int(n) or 1
        if count > 1 and period in _MULTI:
            return f"FREQ={_MULTI[period]};INTERVAL={count}"
    return period


def _times(clause: str) -> int:
    """The count nearest the period word: "每月至少检查2家" → 2."""
    matches = [m for m in (_AT_LEAST.search(clause), _COUNT.search(clause)) if m]
    if not matches:
        return 1
    match = min(matches, key=lambda m: m.start())
    value = cn_to_int(match["n"]) or 1
    return max(1, value)


def find_frequencies(text: str) -> list[Frequency]:
    """Every recurrence stated in ``text``, in order of appearance."""
    masked = _mask_quotes(text)
    starts: list[tuple[int, int, str]] = []  # (start, end of period word, every)
    per_month: dict[int, int] = {}  # start → completions a month the period word implies
    for match in _EVERY.finditer(masked):
        starts.append((match.start(), match.end(), _period(match["p"], match["n"])))
        if match["p"] in _PER_MONTH and not match["n"]:
            per_month[match.start()] = _PER_MONTH[match["p"]]
    for match in _ONE_PER.finditer(text):
        if not any(s <= match.start() < e for s, e, _ in starts):
            word = match["p"] or "半年"
            starts.append((match.start(), match.end(), _period(word, None)))
            if word in _PER_MONTH:
                per_month[match.start()] = _PER_MONTH[word]
    for match in _N_PER.finditer(masked):
        if not any(s <= match.start() < e for s, e, _ in starts):
            word = match["p"] or "半年"
            starts.append((match.start(), match.end(), _period(word, None)))
            if word in _PER_MONTH:
                per_month[match.start()] = _PER_MONTH[word]
    for match in _WORKDAY.finditer(masked):
        if not any(s <= match.start() < e for s, e, _ in starts):
            starts.append((match.start(), match.end(), "workday"))
    for match in _PER_PERIOD.finditer(masked):
        starts.append((match.start(), match.end(), _PERIODS[match["p"]]))
    for match in _TERSE.finditer(masked):
        if not any(s <= match.start() < e for s, e, _ in starts):
            starts.append((match.start(), match.start() + 1, _PERIODS[match["p"]]))
    starts.sort()
    found: list[Frequency] = []
    for index, (start, end, every) in enumerate(starts):
        if _PER_DAY_PENALTY.search(masked[max(0, start - 1) : start + 1]):
            continue
        limit = starts[index + 1][0] if index + 1 < len(starts) else len(masked)
        stop = _CLAUSE_END.search(masked, end)
        clause_end = min(limit, stop.start() if stop else len(masked))
        clause = masked[end:clause_end]
        by = "end"
        by_day = _BY_DAY.match(clause)
        if by_day and every == "month":
            by = f"day {cn_to_int(by_day['d'])}"
        phrase_start = _phrase_start(masked, start)
        comma = _PHRASE_END.search(masked, end)
        phrase_end = comma.start() if comma else len(text)
        found.append(
            Frequency(
                every=every,
                times=_times(clause) * per_month.get(start, 1),
                by=by,
                phrase=text[phrase_start:phrase_end].strip(" ，,、"),
                start=start,
            )
        )
    return found


def _phrase_start(text: str, at: int) -> int:
    """Where the clause holding position ``at`` begins (after the last ，。；)."""
    for index in range(at - 1, -1, -1):
        if text[index] in "。；;，,\n":
            return index + 1
    return 0


def distinct(frequencies: list[Frequency]) -> list[Frequency]:
    """One per (every, times, by), first phrase kept: "每季度…1次" twice is one duty shape."""
    seen: dict[tuple[str, int, str], Frequency] = {}
    for frequency in frequencies:
        seen.setdefault(frequency.key, frequency)
    return list(seen.values())
