"""What a valid schedule still lacks before it can chase anyone: tasks whose roster finds
nobody, and contacts that are placeholders rather than people.

Both pass validation (the file is well formed), yet importing such a list makes reminders
nobody reads.  ``validate`` and ``import`` summarise them at the end; ``--strict`` makes them
errors.  Placeholders are recognised by their form (××/XX/某某 marks, 待定/待指定 words, a
role such as 联络员 standing where a name should be, or such a mark in the title), never by
the exact strings of the files we ship, so a list drafted elsewhere is caught too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.schedule.format import ScheduleFile, TaskSpec

# a run of filler characters: ××, XX, xx, **, ○○, ＊＊, ＸＸ, □□
_FILLER = re.compile(r"([×xX＊*○〇ＸｘＸ□■_＿])\1+|某某|^[\u4e00-\u9fff]某$")
# words that say "not known yet" (Chinese first, then the English habits)
_PENDING = re.compile(
    r"待定|待指定|待明确|待确认|待补充|待填|未定|未指定|占位|暂缺|空缺|\bTBD\b",
    re.IGNORECASE,
)
# a role standing where a person's name should be: 办公室联络员, 安委办负责人
_ROLE = re.compile(r"(联络员|联系人|负责人|经办人|责任人|对接人|专干|工作人员)$")


def is_placeholder(name: str, title: str | None = None) -> bool:
    """Is this a stand-in for a person (to be replaced before import), not a person?"""
    text = name.strip()
    if not text or _FILLER.search(text) or _PENDING.search(text) or _ROLE.search(text):
        return True
    return bool(title and (_FILLER.search(title) or _PENDING.search(title)))


@dataclass
class Gaps:
    """Refs of tasks that remind nobody, and of those that remind only placeholders; the
    placeholder people, in file order."""

    nobody: list[str] = field(default_factory=list)
    only_placeholders: list[str] = field(default_factory=list)
    placeholders: list[str] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(self.nobody or self.placeholders)


def chased(spec: ScheduleFile, task: TaskSpec) -> list[str]:
    """The names the roster rule chases: unit contacts and responsible, else the lead (the
    rule of bot.roster, here on the file before it is stored)."""
    contacts = [c for unit in task.units if unit in spec.units for c in spec.units[unit].contacts]
    names = [n for n in contacts + task.responsible if n in spec.people]
    return names or [n for n in task.lead if n in spec.people]


def find_gaps(spec: ScheduleFile) -> Gaps:
    """The gaps of a valid schedule (undated tasks are reported by the validator itself)."""
    placeholders = [
        name for name, person in spec.people.items() if is_placeholder(name, person.title)
    ]
    found = Gaps(placeholders=placeholders)
    fake = set(placeholders)
    for task in spec.tasks:
        names = chased(spec, task)
        if not names:
            found.nobody.append(task.ref)
        elif all(n in fake for n in names):
            found.only_placeholders.append(task.ref)
    return found
