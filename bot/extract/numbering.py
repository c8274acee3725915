"""Item numbers by their written forms: 一、 （一） 1. 1、 (1) ① 第一条.

The level of a form, not its position, says what a numbered piece is: ``一、`` opens a
section, ``1.`` / ``（一）`` an item, ``(1)`` / ``①`` a measure within an item.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum


class Level(IntEnum):
    SECTION = 1  # 一、  第一部分
    ITEM_CN = 2  # （一） (一)  第一条
    ITEM = 3  # 1.  1、  1．
    SUB = 4  # (1) （1） 1)
    SUB2 = 5  # ① ②


@dataclass(frozen=True)
class Number:
    level: Level
    value: int
    rest: str  # the text after the number


_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_UNITS = {"十": 10, "百": 100}
_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
CN_NUM = "[零〇一二两三四五六七八九十百]+"


def cn_to_int(text: str) -> int | None:
    """十五 → 15, 二十三 → 23, 一百零二 → 102; Arabic digits pass through."""
    if text.isdigit():
        return int(text)
    total, digit = 0, None
    for char in text:
        if char in _CN_DIGITS:
            digit = _CN_DIGITS[char]
        elif char in _CN_UNITS:
            total += (digit if digit is not None else 1) * _CN_UNITS[char]
            digit = None
        else:
            return None
    return total + (digit or 0)


_FORMS: tuple[tuple[Level, re.Pattern[str]], ...] = (
    (Level.SECTION, re.compile(rf"^(?:第({CN_NUM})部分|({CN_NUM})\s*[、.．])\s*")),
    (Level.ITEM_CN, re.compile(rf"^(?:[（(]\s*({CN_NUM})\s*[）)]|第({CN_NUM})条)[、.．\s]*")),
    # 1. 1、 1． but not 3.31 or 2022年: the mark must not be followed by a digit
    (Level.ITEM, re.compile(r"^(\d{1,3})\s*(?:[、．]|\.(?!\d))\s*")),
    (Level.SUB, re.compile(r"^(?:[（(]\s*(\d{1,3})\s*[）)]|(\d{1,3})[)）])[、.．\s]*")),
    (Level.SUB2, re.compile(f"^([{_CIRCLED}])\\s*")),
)


def parse_number(text: str) -> Number | None:
    """The number a piece of text starts with, or None."""
    stripped = text.lstrip(" \t\u3000#*>")
    for level, pattern in _FORMS:
        match = pattern.match(stripped)
        if not match:
            continue
        raw = next(g for g in match.groups() if g)
        value = _CIRCLED.index(raw) + 1 if level is Level.SUB2 else cn_to_int(raw)
        if value is None or value == 0:
            continue
        return Number(level, value, stripped[match.end() :].strip())
    return None


_SPLIT_SUBS = re.compile(r"(?=(?:[（(]\s*\d{1,3}\s*[）)]|[①②③④⑤⑥⑦⑧⑨⑩]))")


def split_measures(text: str) -> list[str]:
    """A cell holding "(1)…(2)…" as several measures; text before the first stays first.

    A "(2)" inside a sentence is not a new measure: splits are kept only where the
    numbers run on 1, 2, 3 …
    """
    out: list[str] = []
    expected = 1
    for piece in _SPLIT_SUBS.split(text):
        if not piece.strip():
            continue
        number = parse_number(piece)
        is_sub = number is not None and number.level >= Level.SUB
        if not out:
            out.append(piece)
            expected = number.value + 1 if is_sub and number else 1
        elif is_sub and number and number.value == expected:
            out.append(piece)
            expected += 1
        else:
            out[-1] += piece
    return [p.strip() for p in out]
