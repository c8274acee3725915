"""Precision and recall of extracted items against hand labels, per field.

Each field of each numbered task is a set (owners by role; the deadline as a one-element
set; ``ongoing`` as {True} or {}; recurrences as ``period*times[@day N]``).  Counts are
summed over tasks, so a missing task costs recall and an invented one precision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.extract.items import ROLE_NAMES, Item

FIELDS = (*ROLE_NAMES, "due", "ongoing", "every")
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


def item_facts(item: Item) -> Facts:
    facts: Facts = {role: set(item.owners.get(role)) for role in ROLE_NAMES}
    facts["due"] = {item.due.isoformat()} if item.due else set()
    facts["ongoing"] = {"true"} if item.ongoing else set()
    facts["every"] = {r.frequency.label() for r in item.recurrences}
    return facts


def label_facts(label: Mapping[str, Any]) -> Facts:
    facts: Facts = {role: {str(n) for n in label.get(role) or []} for role in ROLE_NAMES}
    due = label.get("due")
    facts["due"] = {due.isoformat() if isinstance(due, date) else str(due)} if due else set()
    facts["ongoing"] = {"true"} if label.get("ongoing") else set()
    facts["every"] = {str(e).replace(" ", "") for e in label.get("every") or []}
    return facts


def score(predicted: Mapping[str, Facts], gold: Mapping[str, Facts]) -> dict[str, Count]:
    counts = {name: Count() for name in FIELDS}
    for ref in set(predicted) | set(gold):
        p = predicted.get(ref, {})
        g = gold.get(ref, {})
        for name in FIELDS:
            ps, gs = p.get(name, set()), g.get(name, set())
            counts[name].add(Count(len(ps & gs), len(ps - gs), len(gs - ps)))
    return counts


def by_ref(items: Iterable[Item]) -> dict[str, Facts]:
    return {item.ref: item_facts(item) for item in items}


def mismatches(predicted: Mapping[str, Facts], gold: Mapping[str, Facts]) -> list[str]:
    """Human-readable differences, for a failing test's message."""
    out = []
    for ref in sorted(set(predicted) | set(gold), key=lambda r: [int(x) for x in r.split(".")]):
        p, g = predicted.get(ref, {}), gold.get(ref, {})
        for name in FIELDS:
            ps, gs = p.get(name, set()), g.get(name, set())
            if ps != gs:
                out.append(f"{ref}.{name}: extra {sorted(ps - gs)} missing {sorted(gs - ps)}")
    return out
