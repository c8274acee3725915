"""Precision, recall and F1 of a draft against hand labels, per field.

What is scored is the draft ``dutybot extract`` writes (the YAML a reviewer gets), not the
extractor's internals, so a fact lost between the items and the file costs too.  Each field
of each numbered task is a set: owners by role; the deadline as a one-element set (an
undated task, ``due: 待定``, has none); ``ongoing`` as {true} or {}; recurrences as
``period*times[@day N]``; the deadline wording as a one-element set.  Counts are summed over
tasks, so a missing task costs recall and an invented one precision.

A draft writes an item's recurring duties as sub-tasks ``N.1``, ``N.2`` (same ``source`` as
``N``); they are folded back into item ``N`` here, the way the labels write them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

ROLE_NAMES = ("lead", "responsible", "units", "partners")
FIELDS = (*ROLE_NAMES, "due", "ongoing", "every", "deadline_text")
Facts = dict[str, set[str]]


@dataclass
class Count:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: Count) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def every_label(every: str, times: int = 1, by: str = "end") -> str:
    """``month*2@day2``: the compact form the hand labels use."""
    text = f"{every}*{times}"
    return text if by == "end" else f"{text}@{by.replace(' ', '')}"


def label_facts(label: Mapping[str, Any]) -> Facts:
    facts: Facts = {role: {str(n) for n in label.get(role) or []} for role in ROLE_NAMES}
    due = label.get("due")
    facts["due"] = {due.isoformat() if isinstance(due, date) else str(due)} if due else set()
    facts["ongoing"] = {"true"} if label.get("ongoing") else set()
    facts["every"] = {str(e).replace(" ", "") for e in label.get("every") or []}
    text = label.get("deadline_text")
    facts["deadline_text"] = {str(text)} if text else set()
    return facts


def _task_facts(task: Mapping[str, Any]) -> Facts:
    facts: Facts = {role: {str(n) for n in _names(task.get(role))} for role in ROLE_NAMES}
    due = task.get("due")
    facts["due"] = {due.isoformat()} if isinstance(due, date) else set()
    facts["ongoing"] = {"true"} if task.get("ongoing") is True else set()
    every = task.get("every")
    facts["every"] = (
        {every_label(str(every), int(task.get("times") or 1), str(task.get("by") or "end"))}
        if every
        else set()
    )
    text = task.get("deadline_text")
    facts["deadline_text"] = {str(text)} if text else set()
    return facts


def _names(value: Any) -> list[Any]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def draft_facts(tasks: Iterable[Mapping[str, Any]]) -> dict[str, Facts]:
    """The draft's ``tasks:`` by item ref, recurring sub-tasks folded into their item."""
    listed = [t for t in tasks if isinstance(t, Mapping) and t.get("ref") is not None]
    by_ref = {str(t["ref"]): t for t in listed}
    out: dict[str, Facts] = {}
    for task in listed:
        ref = str(task["ref"])
        parent = _parent(ref, task, by_ref, listed)
        facts = _task_facts(task)
        if parent is None:
            out.setdefault(ref, facts)
            continue
        into = out.setdefault(parent, {f: set() for f in FIELDS})
        into["every"] |= facts["every"]
        if parent not in by_ref:  # only sub-tasks were written: they carry the item's owners
            for role in ROLE_NAMES:
                into[role] |= facts[role]
            # and the first of them the item's deadline wording (draft.py, subtasks_only)
            into["deadline_text"] = into["deadline_text"] or facts["deadline_text"]
    return out


def _parent(
    ref: str,
    task: Mapping[str, Any],
    by_ref: Mapping[str, Mapping[str, Any]],
    listed: list[Mapping[str, Any]],
) -> str | None:
    """The item a recurring sub-task belongs to, or None when it is a task of its own."""
    if "." not in ref or not task.get("every"):
        return None
    head = ref.rsplit(".", 1)[0]
    source = task.get("source")
    if head in by_ref:
        return head if by_ref[head].get("source") == source else None
    siblings = [t for t in listed if str(t["ref"]).rsplit(".", 1)[0] == head]
    if all(t.get("every") and t.get("source") == source for t in siblings):
        return head
    return None


def score(
    predicted: Mapping[str, Facts], gold: Mapping[str, Facts], fields: Iterable[str] = FIELDS
) -> dict[str, Count]:
    """Per field, plus ``tasks`` (refs found / invented / missed)."""
    names = list(fields)
    counts = {name: Count() for name in ["tasks", *names]}
    counts["tasks"] = Count(
        len(set(predicted) & set(gold)),
        len(set(predicted) - set(gold)),
        len(set(gold) - set(predicted)),
    )
    for ref in set(predicted) | set(gold):
        p = predicted.get(ref, {})
        g = gold.get(ref, {})
        for name in names:
            ps, gs = p.get(name, set()), g.get(name, set())
            counts[name].add(Count(len(ps & gs), len(ps - gs), len(gs - ps)))
    return counts


def owners(counts: Mapping[str, Count]) -> Count:
    """The four owner roles as one field (the issue's "owners")."""
    total = Count()
    for role in ROLE_NAMES:
        if role in counts:
            total.add(counts[role])
    return total


def _ref_key(ref: str) -> list[int]:
    return [int(x) if x.isdigit() else 0 for x in ref.split(".")]


def mismatches(
    predicted: Mapping[str, Facts], gold: Mapping[str, Facts], fields: Iterable[str] = FIELDS
) -> list[str]:
    """Human-readable differences, for a failing test's message or ``--show``."""
    names = list(fields)
    out = []
    for ref in sorted(set(predicted) | set(gold), key=_ref_key):
        if ref not in gold:
            out.append(f"{ref}: not a labelled task")
            continue
        if ref not in predicted:
            out.append(f"{ref}: task missing")
            continue
        p, g = predicted[ref], gold[ref]
        for name in names:
            ps, gs = p.get(name, set()), g.get(name, set())
            if ps != gs:
                out.append(f"{ref}.{name}: extra {sorted(ps - gs)} missing {sorted(gs - ps)}")
    return out
