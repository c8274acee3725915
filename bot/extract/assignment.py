"""The unlabelled assignment at the end of a measure: "（A、B负责）", "（A会同B负责）",
"（A牵头，B配合，2023年6月底前完成）", "（…等部门和各区县人民政府负责，长期坚持）".

实施意见 and 通知 name owners this way, without 牵头单位： labels.  The verbs say the roles:
before 负责 / 牵头 / 负总责 are the lead units; before 配合 / 参与 / 协助 / 指导 the partners;
"A会同B" makes A the lead and B a partner.  What follows the owners (a date, 长期坚持,
每季度…) is the deadline wording, kept verbatim.  A trailing parenthesis without such verbs
or timing ("（以下简称…）", "（含…）") is left alone.
"""

from __future__ import annotations

import re

from bot.extract.dates import find_dates, says_ongoing
from bot.extract.frequency import find_frequencies
from bot.extract.labels import Role
from bot.extract.owners import Kind, classify, split_names
from bot.extract.raw import Fields

# A trailing bracket, which may hold one nested pair: "（各村（社区）负责）。"
_TRAILING = re.compile(r"[（(](?P<inside>(?:[^（()）]|[（(][^（()）]*[）)])+)[）)][\s。；;，,.]*$")
_WITH = "会同"
_PARTNER_VERBS = ("配合", "参与", "协助", "协同", "协办", "指导")
_LEAD_VERBS = (
    "按职责分工负责",
    "按职责分工落实",
    "按职责负责",
    "分别负责",
    "共同负责",
    "牵头负责",
    "负总责",
    "牵头",
    "负责",
    "主责",
)
_VERB = re.compile(
    "|".join(
        re.escape(v) for v in sorted((_WITH, *_PARTNER_VERBS, *_LEAD_VERBS), key=len, reverse=True)
    )
)
_CLAUSES = re.compile(r"[，,；;]")
_MAX_NAMES = 120  # characters of names before a verb: more is a sentence, not owners


def read_assignment(text: str) -> tuple[str, Fields]:
    """``text`` without its trailing assignment, and the fields read from it (or none)."""
    match = _TRAILING.search(text)
    if match is None:
        return text, {}
    fields = _fields(match["inside"])
    if not fields:
        return text, {}
    return text[: match.start()].rstrip(" ，,；;"), fields


# The same at the start of a measure, as its own clause: "由区应急局牵头，区公安分局配合，开展…",
# "区住建委负责，开展…".  Only bare unit names before the verbs: a sentence's subject
# ("主要负责人负责…", "企业要…") is no assignment.
_LEADING = re.compile(
    r"^由?(?P<lead>[^，,。；;（(]{2,60}?)(?:牵头负责|负总责|牵头|负责)[，,]"
    r"(?:(?P<partners>[^，,。；;（(]{2,80}?)(?:配合|参与|协助)[，,])?"
)


def read_leading_assignment(text: str) -> tuple[str, Fields]:
    """``text`` without a leading "由A牵头，B配合，" clause, and the fields it names (or none)."""
    match = _LEADING.match(text)
    if match is None or not match.end() < len(text):
        return text, {}
    lead, partners = match["lead"].strip(), (match["partners"] or "").strip()
    if not _only_units(lead) or (partners and not _only_units(partners)):
        return text, {}
    fields: Fields = {Role.UNITS: [lead]}
    if partners:
        fields[Role.PARTNERS] = [partners]
    return text[match.end() :].lstrip(), fields


_MARKED = re.compile(r"[（(]\s*(?:牵头|配合|负责)\s*[）)]")


def read_owner_cell(text: str) -> Fields:
    """A 责任单位 cell that tells the roles apart with verbs: "A牵头，B配合", "A会同B"."""
    if _MARKED.search(text) or not re.search("|".join((_WITH, *_PARTNER_VERBS)), text):
        return {}
    fields = _fields(text)
    if Role.PARTNERS not in fields or set(fields) - {Role.UNITS, Role.PARTNERS}:
        return {}
    names = [v for values in fields.values() for v in values]
    return fields if all(_only_units(n) for n in names) else {}


def _fields(inside: str) -> Fields:
    fields: Fields = {}
    position = 0
    partners_next = False  # after "A会同", the names up to the next verb are partners
    for verb in _VERB.finditer(inside):
        names = inside[position : verb.start()].strip(" ，,；;、")
        position = verb.end()
        if not names:
            continue
        if len(names) > _MAX_NAMES or find_dates(names, 2000, field=True):
            return {}
        if verb.group() == _WITH:
            role, partners_next = Role.UNITS, True
        elif verb.group() in _PARTNER_VERBS:
            role, partners_next = Role.PARTNERS, False
        else:
            role, partners_next = (Role.PARTNERS if partners_next else Role.UNITS), False
        fields.setdefault(role, []).append(names)
    rest = inside[position:]
    clauses = _CLAUSES.split(rest)
    timing = [c.strip(" 、") for c in clauses if is_timing(c)]
    names = "、".join(c.strip(" 、") for c in clauses if c.strip(" 、") and not is_timing(c))
    if not fields and names and _only_units(names):
        fields[Role.UNITS] = [names]  # "（市应急局、市公安局）", "（市应急局，6月底前）"
    if timing:
        fields[Role.DEADLINE] = ["，".join(timing)]
    return fields


def is_timing(clause: str) -> bool:
    """A clause that says when (a date, 长期坚持, 每季度…), not who."""
    clause = clause.strip()
    return bool(clause) and bool(
        find_dates(clause, 2000, field=True)
        or says_ongoing(clause, field=True)
        or find_frequencies(clause)
    )


_NOT_NAMES = re.compile(r"^\s*(?:含|包括|包含|即|如|指|以下|其中|详见|见|另|不含|注)")


def _only_units(text: str) -> bool:
    """ "（市应急局、市公安局）": bare unit names; "（含试点单位）" explains, it names no one."""
    names = split_names(text)
    return (
        bool(names)
        and len(text) <= 60
        and not _NOT_NAMES.match(text)
        and all(classify(n) is Kind.UNIT and len(n) <= 20 for n in names)
    )
